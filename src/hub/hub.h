/* hub: Hugging Face Hub model downloads into huggingface_hub's cache layout, so that vllmc and the
 * Python tools (vLLM, transformers, huggingface-cli) share one cache:
 *
 *   CACHE/models--ORG--NAME/blobs/ETAG            file contents (ETAG: git sha1, or sha256 for LFS files)
 *   CACHE/models--ORG--NAME/snapshots/COMMIT/FILE relative symlink to ../../blobs/ETAG
 *   CACHE/models--ORG--NAME/refs/REVISION         the commit REVISION (a branch or tag) points to
 *   CACHE/.locks/models--ORG--NAME/ETAG.lock      flock()ed while a blob downloads (as filelock does)
 *
 * A blob is written to ETAG.incomplete first and renamed when its size checks out; an interrupted
 * download is resumed with a Range request. Only the files vLLM loads are fetched (configs, tokenizer
 * files, chat templates, *.safetensors and their index). Environment, as huggingface_hub reads it:
 * HF_ENDPOINT, HF_TOKEN (else HF_TOKEN_PATH or HF_HOME/token), HF_HUB_OFFLINE, HF_HUB_CACHE, HF_HOME,
 * HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT (seconds), HF_HUB_DISABLE_PROGRESS_BARS. */
#ifndef VLLMC_HUB_H
#define VLLMC_HUB_H

#include <stddef.h>

typedef struct {
    const char *revision;  /* --revision (default "main"): a branch, tag or commit */
    const char *cache_dir; /* --download-dir (vLLM: the cache dir), else $HF_HUB_CACHE, else $HF_HOME/hub,
                              else ~/.cache/huggingface/hub */
    int progress;          /* progress bar on stderr: -1 auto (isatty(2)), 0 off, 1 on */
} hub_opts;

/* A model argument -> a local folder (malloc'd). An existing directory is returned as is (a strdup).
 * Otherwise `model` must look like ORG/NAME (or NAME); it is resolved in the cache, downloading what is
 * missing. When the Hub cannot be reached (or answers an error) and the cache has the revision, the
 * cache is used with a warning on stderr. o may be NULL (defaults). */
int hub_resolve(const char *model, const hub_opts *o, char **local_dir);

/* ---- the pure parts, for tests ---- */

/* 1 if `id` is a valid repo id as huggingface_hub's validate_repo_id has it: NAME or ORG/NAME of
 * [A-Za-z0-9_.-], each part starting and ending with a letter, digit or '_', NAME at most 96
 * characters, no "--" or "..", not ending in ".git". */
int hub_repo_id_valid(const char *id);
/* 1 for a 40-character lower-case hex commit hash. */
int hub_is_commit(const char *rev);
/* 1 for a relative path that is safe under a folder: no leading '/', no '\\', no empty, "." or ".."
 * components, no control characters. (Repo file names and revisions both go into paths.) */
int hub_path_safe(const char *name);
/* "models--ORG--NAME" (malloc'd, NULL when out of memory). */
char *hub_repo_folder(const char *repo_id);
/* The symlink target from snapshots/COMMIT/FILENAME to blobs/ETAG: "../../blobs/ETAG", one more "../"
 * per '/' in filename (malloc'd). */
char *hub_symlink_target(const char *filename, const char *etag);
/* An ETag header -> the blob name: W/ and surrounding quotes removed; NULL (VC_EFORMAT message) when
 * the result is empty or has characters other than [A-Za-z0-9._+=-] or starts with '.'. */
char *hub_etag_name(const char *raw);
/* The cache folder (malloc'd): download_dir, else the environment as above; "~" is expanded. */
int hub_cache_dir(const char *download_dir, char **out);
/* Percent-encoding as Python's urllib.parse.quote: keeps A-Za-z0-9 and "_.-~", and '/' when keep_slash. */
char *hub_url_quote(const char *s, int keep_slash);
/* 1 for the non-weight files vLLM reads (config.json, tokenizer.json, chat_template.jinja, ...). */
int hub_wanted_config(const char *name);
/* The *.safetensors files to fetch from a repo's file list: the shards named by
 * model.safetensors.index.json (its text in index, when the repo has one; each must be in the list),
 * else model.safetensors, else every top-level *.safetensors. VC_EUNSUP "no safetensors weights in
 * REPO" when there are none. *out is a malloc'd array of malloc'd names. */
int hub_weight_files(const char *repo, char *const *files, int n, const char *index, size_t index_len, char ***out,
                     int *nout);
/* The API's model info {"sha": ..., "siblings": [{"rfilename": ...}]} -> commit (41 bytes) and the
 * file names that are safe paths (others are skipped). */
int hub_parse_info(const char *json, size_t len, const char *url, char commit[41], char ***files, int *n);
void hub_free_strs(char **v, int n);

#endif
