/* cli_tok: the tokenizer subcommands (src/cli/tokenize.c).
 * argv[0] is the first argument after the subcommand word; each returns the
 * process exit status (0 ok, 1 failure, 2 usage) and reports errors on stderr.
 *
 *   vllmc tokenize DIR [--no-special] --json      stdin (all bytes, UTF-8) -> {"ids":[...]}
 *   vllmc tokenize DIR [--no-special] --jsonl     one JSON string per line -> one [ids] per line
 *   vllmc detokenize DIR [--skip-special] --json  {"ids":[...]} -> {"text":"..."}
 *   vllmc detokenize DIR [--skip-special] --jsonl one [ids] per line -> one JSON string per line
 *       detokenize also takes --no-cleanup (skip transformers' clean_up_tokenization_spaces),
 *       --stream (decode through tok_stream, print the concatenated pieces; implies --no-cleanup)
 *       and --no-spaces-between-special (vLLM's spaces_between_special_tokens=False)
 *   vllmc bench tokenize DIR FILE [--runs N]      load time, encode MB/s and tokens/s, one thread */
#ifndef VLLMC_CLI_TOK_H
#define VLLMC_CLI_TOK_H

int cli_tokenize(int argc, char **argv);
int cli_detokenize(int argc, char **argv);
int cli_bench_tokenize(int argc, char **argv);

#endif
