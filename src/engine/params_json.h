/* params_json: vLLM's sampling fields read from a JSON object (a line of a
 * --prompts-file, later an OpenAI request body). Unknown fields are ignored
 * here (the caller decides what else is allowed); a field of the wrong type is
 * an error naming it. Text fields that need a tokenizer (stop strings stay
 * text; bad_words are token sequences here: lists of ids) are copied as given. */
#ifndef VLLMC_ENGINE_PARAMS_JSON_H
#define VLLMC_ENGINE_PARAMS_JSON_H

#include <cjson/cJSON.h>

#include "engine/params.h"

/* Fill p (already defaulted) from obj. On error p may hold partial arrays:
 * eng_params_free() it. */
int eng_params_from_json(const cJSON *obj, eng_sampling_params *p);

#endif
