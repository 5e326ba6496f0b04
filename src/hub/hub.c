/* hub: resolve ORG/NAME to a snapshot folder of the Hugging Face cache, downloading what is missing
 * (huggingface_hub's snapshot_download + hf_hub_download; see hub.h for the layout). */
#include "hub/hub.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "hub/hub_http.h"

#define HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define HUB_MAX_INFO ((size_t)64 << 20)   /* the API's model info (siblings of huge repos) */
#define HUB_MAX_INDEX ((size_t)256 << 20) /* model.safetensors.index.json */
#define HUB_MAX_RETRIES 5                 /* as huggingface_hub's http_get: resume after a dropped connection */
#define HUB_INDEX "model.safetensors.index.json"

static char *xsprintf(const char *fmt, ...) VC_PRINTF(1, 2);
static char *xsprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

static void warnf(const char *fmt, ...) VC_PRINTF(1, 2);
static void warnf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("vllmc: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void hub_free_strs(char **v, int n) {
    for (int i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static int push_str(char ***v, int *n, int *cap, const char *s) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        char **x = realloc(*v, sizeof *x * (size_t)nc);
        if (!x) return vc_errf(VC_ENOMEM, "out of memory");
        *v = x;
        *cap = nc;
    }
    if (!((*v)[*n] = strdup(s))) return vc_errf(VC_ENOMEM, "out of memory");
    (*n)++;
    return VC_OK;
}

static int has_str(char *const *v, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i], s)) return 1;
    return 0;
}

/* ---- the pure parts ---- */

static int word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int id_part_ok(const char *s, size_t n, size_t max) {
    if (n < 1 || n > max || !word_char(s[0]) || !word_char(s[n - 1])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!word_char(s[i]) && s[i] != '-' && s[i] != '.') return 0;
    return 1;
}

int hub_repo_id_valid(const char *id) {
    if (!id || strstr(id, "--") || strstr(id, "..")) return 0;
    size_t n = strlen(id);
    if (n >= 4 && !strcmp(id + n - 4, ".git")) return 0;
    const char *slash = strchr(id, '/');
    if (!slash) return id_part_ok(id, n, 96);
    if (strchr(slash + 1, '/')) return 0;
    return id_part_ok(id, (size_t)(slash - id), 1024) && id_part_ok(slash + 1, strlen(slash + 1), 96);
}

int hub_is_commit(const char *rev) {
    if (!rev || strlen(rev) != 40) return 0;
    for (int i = 0; i < 40; i++)
        if (!((rev[i] >= '0' && rev[i] <= '9') || (rev[i] >= 'a' && rev[i] <= 'f'))) return 0;
    return 1;
}

int hub_path_safe(const char *name) {
    if (!name || !*name || name[0] == '/' || strlen(name) > 1024) return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\') return 0;
    for (const char *p = name;;) { /* components */
        size_t k = strcspn(p, "/");
        if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.')) return 0;
        if (!p[k]) return 1;
        p += k + 1;
    }
}

char *hub_repo_folder(const char *repo_id) {
    size_t n = strlen(repo_id);
    char *s = malloc(n + 16), *o = s;
    if (!s) return NULL;
    o += sprintf(o, "models--");
    for (const char *p = repo_id; *p; p++) {
        if (*p == '/') {
            *o++ = '-';
            *o++ = '-';
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return s;
}

char *hub_symlink_target(const char *filename, const char *etag) {
    int depth = 2; /* snapshots/COMMIT/ */
    for (const char *p = filename; *p; p++) depth += *p == '/';
    char *s = malloc((size_t)depth * 3 + strlen(etag) + 8);
    if (!s) return NULL;
    char *o = s;
    for (int i = 0; i < depth; i++) o += sprintf(o, "../");
    sprintf(o, "blobs/%s", etag);
    return s;
}

char *hub_etag_name(const char *raw) {
    if (!raw) {
        vc_errf(VC_EFORMAT, "no ETag");
        return NULL;
    }
    if (!strncmp(raw, "W/", 2)) raw += 2;
    size_t n = strlen(raw);
    while (n && raw[n - 1] == '"') n--;
    while (n && raw[0] == '"') raw++, n--;
    int ok = n > 0 && n <= 255 && raw[0] != '.';
    for (size_t i = 0; ok && i < n; i++)
        ok = word_char(raw[i]) || raw[i] == '.' || raw[i] == '-' || raw[i] == '+' || raw[i] == '=';
    if (!ok) {
        vc_errf(VC_EFORMAT, "ETag '%.80s' cannot name a file", raw);
        return NULL;
    }
    char *s = strndup(raw, n);
    if (!s) vc_errf(VC_ENOMEM, "out of memory");
    return s;
}

char *hub_url_quote(const char *s, int keep_slash) {
    char *o = malloc(strlen(s) * 3 + 1), *p = o;
    if (!o) return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (word_char((char)*c) || *c == '.' || *c == '-' || *c == '~' || (keep_slash && *c == '/')) *p++ = (char)*c;
        else p += sprintf(p, "%%%02X", *c);
    }
    *p = 0;
    return o;
}

int hub_wanted_config(const char *name) {
    static const char *const names[] = {
        "config.json",       "generation_config.json", "tokenizer.json",  "tokenizer_config.json",
        "special_tokens_map.json", "chat_template.jinja", "chat_template.json", "added_tokens.json",
        "tokenizer.model",   "adapter_config.json" /* LoRA adapters (step 8): with adapter_model.safetensors */};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

static int is_top_safetensors(const char *f) {
    size_t n = strlen(f);
    return n > 12 && !strcmp(f + n - 12, ".safetensors") && !strchr(f, '/');
}

int hub_weight_files(const char *repo, char *const *files, int n, const char *index, size_t index_len, char ***out,
                     int *nout) {
    char **v = NULL;
    int nv = 0, cap = 0, rc = VC_OK;
    *out = NULL;
    *nout = 0;
    if (index) { /* the shards the index names: every other *.safetensors (consolidated.*) is left out */
        cJSON *root = js_parse(index, index_len, NULL);
        const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
        if (!cJSON_IsObject(wm)) {
            cJSON_Delete(root);
            return vc_errf(VC_EFORMAT, "%s/%s: no \"weight_map\" object", repo, HUB_INDEX);
        }
        for (const cJSON *e = wm->child; e && !rc; e = e->next) {
            if (!cJSON_IsString(e) || !hub_path_safe(e->valuestring))
                rc = vc_errf(VC_EFORMAT, "%s/%s: bad file name for tensor '%.200s'", repo, HUB_INDEX,
                             e->string ? e->string : "");
            else if (!has_str(files, n, e->valuestring))
                rc = vc_errf(VC_EFORMAT, "%s/%s names '%.200s', which is not in the repository", repo, HUB_INDEX,
                             e->valuestring);
            else if (!has_str(v, nv, e->valuestring))
                rc = push_str(&v, &nv, &cap, e->valuestring);
        }
        cJSON_Delete(root);
    } else if (has_str(files, n, "model.safetensors")) { /* what the loader reads when there is no index */
        rc = push_str(&v, &nv, &cap, "model.safetensors");
    } else {
        for (int i = 0; i < n && !rc; i++)
            if (is_top_safetensors(files[i])) rc = push_str(&v, &nv, &cap, files[i]);
    }
    if (!rc && nv == 0)
        rc = vc_errf(VC_EUNSUP, "no safetensors weights in %s (vllmc loads *.safetensors only)", repo);
    if (rc) {
        hub_free_strs(v, nv);
        return rc;
    }
    *out = v;
    *nout = nv;
    return VC_OK;
}

int hub_parse_info(const char *json, size_t len, const char *url, char commit[41], char ***files, int *n) {
    *files = NULL;
    *n = 0;
    cJSON *root = js_parse(json, len, NULL);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(root, "sha");
    const cJSON *sib = cJSON_GetObjectItemCaseSensitive(root, "siblings");
    if (!cJSON_IsObject(root) || !cJSON_IsString(sha) || !hub_is_commit(sha->valuestring) || !cJSON_IsArray(sib)) {
        cJSON_Delete(root);
        return vc_errf(VC_EFORMAT, "%s: not a model info object with a commit \"sha\" and \"siblings\"", url);
    }
    memcpy(commit, sha->valuestring, 41);
    char **v = NULL;
    int nv = 0, cap = 0, rc = VC_OK;
    const cJSON *e;
    cJSON_ArrayForEach(e, sib) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "rfilename");
        if (cJSON_IsString(f) && hub_path_safe(f->valuestring) && (rc = push_str(&v, &nv, &cap, f->valuestring)))
            break;
    }
    cJSON_Delete(root);
    if (rc) {
        hub_free_strs(v, nv);
        return rc;
    }
    *files = v;
    *n = nv;
    return VC_OK;
}

/* ---- environment ---- */

static int env_true(const char *name) {
    const char *v = getenv(name);
    return v && (!strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static char *expand_user(const char *p) {
    const char *home = getenv("HOME");
    if (p[0] == '~' && (p[1] == '/' || !p[1]) && home) return xsprintf("%s%s", home, p + 1);
    return strdup(p);
}

/* HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface */
static char *hf_home(void) {
    const char *v;
    if ((v = env_nonempty("HF_HOME"))) return expand_user(v);
    if ((v = env_nonempty("XDG_CACHE_HOME"))) {
        char *x = expand_user(v), *s = x ? xsprintf("%s/huggingface", x) : NULL;
        free(x);
        return s;
    }
    return expand_user("~/.cache/huggingface");
}

int hub_cache_dir(const char *download_dir, char **out) {
    const char *v;
    char *s = NULL;
    if (download_dir && *download_dir) s = expand_user(download_dir);
    else if ((v = env_nonempty("HF_HUB_CACHE")) || (v = env_nonempty("HUGGINGFACE_HUB_CACHE"))) s = expand_user(v);
    else {
        char *h = hf_home();
        s = h ? xsprintf("%s/hub", h) : NULL;
        free(h);
    }
    *out = s;
    return s ? VC_OK : vc_errf(VC_ENOMEM, "out of memory");
}

/* HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the file HF_TOKEN_PATH or HF_HOME/token. */
static char *read_token(void) {
    const char *v;
    char *t = NULL;
    if ((v = env_nonempty("HF_TOKEN")) || (v = env_nonempty("HUGGING_FACE_HUB_TOKEN"))) {
        t = strdup(v);
    } else {
        char *path = NULL, *h;
        if ((v = env_nonempty("HF_TOKEN_PATH"))) path = expand_user(v);
        else if ((h = hf_home())) {
            path = xsprintf("%s/token", h);
            free(h);
        }
        size_t len;
        if (path && vc_file_exists(path) && vc_read_file(path, 1 << 16, &t, &len)) t = NULL;
        free(path);
    }
    if (!t) return NULL;
    char *b = t; /* strip whitespace, as huggingface_hub does */
    while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n') b++;
    size_t n = strlen(b);
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\r' || b[n - 1] == '\n')) n--;
    memmove(t, b, n);
    t[n] = 0;
    for (char *c = t; *c; c++) /* a header must stay one line */
        if ((unsigned char)*c < 0x20) {
            free(t);
            return NULL;
        }
    if (!*t) {
        free(t);
        return NULL;
    }
    return t;
}

static long env_seconds(const char *name, long def) {
    const char *v = env_nonempty(name);
    double d = v ? strtod(v, NULL) : 0;
    return d >= 1 && d < 86400 ? (long)d : def;
}

/* ---- the cache on disk ---- */

static int mkdir_p(const char *path) {
    char *p = strdup(path);
    if (!p) return vc_errf(VC_ENOMEM, "out of memory");
    if (!*p) {
        free(p);
        return VC_OK;
    }
    for (char *s = p + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) && errno != EEXIST) {
                int e = errno;
                free(p);
                if (e == ENOSPC) return vc_errf(VC_EIO, "no space left on device while creating %s", path);
                return vc_errf(VC_EIO, "cannot create folder %s: %s", path, strerror(e));
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return VC_OK;
}

static int mkdir_parent(const char *path) {
    char *p = strdup(path);
    if (!p) return vc_errf(VC_ENOMEM, "out of memory");
    char *sl = strrchr(p, '/');
    int rc = VC_OK;
    if (sl && sl != p) {
        *sl = 0;
        rc = mkdir_p(p);
    }
    free(p);
    return rc;
}

static int is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

/* refs/REVISION -> commit (41 bytes); 0 when found. */
static int read_ref(const char *storage, const char *revision, char commit[41]) {
    if (hub_is_commit(revision)) {
        memcpy(commit, revision, 41);
        return 0;
    }
    char *path = xsprintf("%s/refs/%s", storage, revision), *t = NULL;
    size_t len = 0;
    int found = path && is_file(path) && !vc_read_file(path, 4096, &t, &len);
    free(path);
    if (!found) return -1;
    while (len && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' ')) t[--len] = 0;
    found = hub_is_commit(t);
    if (found) memcpy(commit, t, 41);
    free(t);
    return found ? 0 : -1;
}

static int write_ref(const char *storage, const char *revision, const char *commit) {
    char cur[41];
    if (!read_ref(storage, revision, cur) && !strcmp(cur, commit)) return VC_OK;
    char *path = xsprintf("%s/refs/%s", storage, revision);
    char *tmp = path ? xsprintf("%s.tmp.%d", path, (int)getpid()) : NULL;
    int rc = VC_OK;
    if (!tmp) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
    } else if (!(rc = mkdir_parent(path))) {
        FILE *f = fopen(tmp, "w");
        int ok = f && fputs(commit, f) >= 0;
        int e = errno;
        if (f && fclose(f)) ok = 0, e = errno;
        if (!ok || rename(tmp, path)) {
            if (ok) e = errno;
            unlink(tmp);
            rc = e == ENOSPC ? vc_errf(VC_EIO, "no space left on device while writing %s", path)
                             : vc_errf(VC_EIO, "cannot write %s: %s", path, strerror(e));
        }
    }
    free(path);
    free(tmp);
    return rc;
}

/* The cached snapshot of `revision`, or NULL. */
static char *cached_snapshot(const char *storage, const char *revision, char commit[41]) {
    if (read_ref(storage, revision, commit)) return NULL;
    char *snap = xsprintf("%s/snapshots/%s", storage, commit);
    if (snap && !is_dir(snap)) {
        free(snap);
        snap = NULL;
    }
    return snap;
}

static int make_link(const char *pointer, const char *filename, const char *etag) {
    int rc = mkdir_parent(pointer);
    if (rc) return rc;
    char *target = hub_symlink_target(filename, etag);
    if (!target) return vc_errf(VC_ENOMEM, "out of memory");
    unlink(pointer); /* a dangling link from a deleted blob, or an old target */
    if (symlink(target, pointer) && errno != EEXIST)
        rc = vc_errf(VC_EIO, "cannot create the symlink %s -> %s: %s", pointer, target, strerror(errno));
    free(target);
    return rc;
}

/* ---- talking to the Hub ---- */

typedef struct {
    const char *repo, *revision;
    char *endpoint;  /* without a trailing '/' */
    char *storage;   /* CACHE/models--ORG--NAME */
    char *locks;     /* CACHE/.locks/models--ORG--NAME */
    char commit[41];
    hub_http *http;
    int progress, has_token;
} hub_ctx;

/* One line of an error page for a message. */
static void body_line(const hub_resp *r, char *buf, size_t len) {
    size_t k = 0;
    if (r->error_message) {
        snprintf(buf, len, "%s", r->error_message);
        return;
    }
    for (size_t i = 0; r->body && i < r->body_len && k + 1 < len && k < 200; i++)
        buf[k++] = (unsigned char)r->body[i] < 0x20 ? ' ' : r->body[i];
    buf[k] = 0;
}

/* An HTTP error status -> a message naming the repo (and the file). huggingface_hub's
 * hf_raise_for_status reads the same X-Error-Code values. */
static int http_error(const hub_ctx *c, const hub_resp *r, const char *url, const char *file) {
    const char *code = r->error_code ? r->error_code : "";
    char detail[256];
    body_line(r, detail, sizeof detail);
    if (!strcmp(code, "RevisionNotFound"))
        return vc_errf(VC_EINVAL, "Revision Not Found for url %s: revision '%s' does not exist in %s", url,
                       c->revision, c->repo);
    if (!strcmp(code, "RepoNotFound") || (!*code && r->status == 404 && !file))
        return vc_errf(VC_EINVAL,
                       "Repository Not Found for url %s: %s does not exist or is private; if it is private or "
                       "gated, set HF_TOKEN",
                       url, c->repo);
    if (!strcmp(code, "GatedRepo") || r->status == 401 || r->status == 403)
        return vc_errf(VC_EINVAL,
                       "Access to model %s is restricted (gated); log in / set HF_TOKEN%s (%ld from %s%s%s)", c->repo,
                       c->has_token ? " to a token that has been granted access on the model's page" : "", r->status,
                       url, *detail ? ": " : "", detail);
    if (!strcmp(code, "EntryNotFound") || r->status == 404)
        return vc_errf(VC_EINVAL, "Entry Not Found for url %s: %s is not in %s at revision %s", url,
                       file ? file : "the file", c->repo, c->revision);
    return vc_errf(VC_EIO, "HTTP %ld from %s%s%s", r->status, url, *detail ? ": " : "", detail);
}

static int download_blob(hub_ctx *c, const char *file, const char *url, const char *blob, long long size) {
    char *inc = xsprintf("%s.incomplete", blob);
    if (!inc) return vc_errf(VC_ENOMEM, "out of memory");
    int rc = VC_OK, fd = open(inc, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = errno == ENOSPC ? vc_errf(VC_EIO, "no space left on device while writing %s", inc)
                             : vc_errf(VC_EIO, "cannot create %s: %s", inc, strerror(errno));
        free(inc);
        return rc;
    }
    struct stat st;
    long long have = fstat(fd, &st) ? 0 : (long long)st.st_size;
    if (size >= 0 && have > size) { /* not a prefix of this blob: start over */
        if (ftruncate(fd, 0)) {
            rc = vc_errf(VC_EIO, "cannot truncate %s: %s", inc, strerror(errno));
            goto done;
        }
        have = 0;
    }
    hub_progress p = {.on = c->progress, .name = file, .total = size, .done = have, .start = have, .t0 = hub_now()};
    for (int attempt = 0;; attempt++) {
        if (size >= 0 && have == size) break; /* everything is there (an earlier run stopped before the rename) */
        hub_resp r;
        memset(&r, 0, sizeof r);
        int retry = 0;
        rc = hub_http_get_file(c->http, url, fd, inc, have, &p, &r, &retry);
        if (!rc && r.status == 416 && have > 0 && attempt < HUB_MAX_RETRIES) { /* the range is past the end */
            hub_resp_free(&r);
            if (ftruncate(fd, 0)) {
                rc = vc_errf(VC_EIO, "cannot truncate %s: %s", inc, strerror(errno));
                break;
            }
            have = p.done = p.start = 0;
            continue;
        }
        if (!rc && r.status / 100 != 2) rc = http_error(c, &r, url, file);
        hub_resp_free(&r);
        have = fstat(fd, &st) ? have : (long long)st.st_size;
        if (!rc && size >= 0 && have < size) { /* the body ended early without a transport error */
            rc = vc_errf(VC_EIO, "%s ended after %lld of %lld bytes", url, have, size);
            retry = 1;
        }
        if (!rc) break;
        if (!retry || attempt >= HUB_MAX_RETRIES) break;
        if (p.on) hub_progress_draw(&p, 1);
        warnf("error while downloading %s: %s; trying to resume download...", file, vc_errmsg());
        sleep(1);
        p.done = have;
    }
    if (p.on) hub_progress_draw(&p, 1);
    if (rc) goto done;
    if (size >= 0 && have != size) {
        unlink(inc);
        rc = vc_errf(VC_EIO,
                     "consistency check failed: %s should be %lld bytes but %lld were downloaded (the partial file "
                     "was removed; try again)",
                     file, size, have);
        goto done;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd)) {
        rc = errno == ENOSPC ? vc_errf(VC_EIO, "no space left on device while writing %s", inc)
                             : vc_errf(VC_EIO, "cannot write %s: %s", inc, strerror(errno));
        goto done;
    }
    if (rename(inc, blob)) rc = vc_errf(VC_EIO, "cannot rename %s to %s: %s", inc, blob, strerror(errno));
done:
    if (fd >= 0) close(fd);
    free(inc);
    return rc;
}

/* HEAD the file's resolve URL (following only relative redirects: a renamed repo, not the CDN). */
static int head_file(hub_ctx *c, const char *url0, hub_resp *r, char **url_out) {
    char *url = strdup(url0);
    if (!url) return vc_errf(VC_ENOMEM, "out of memory");
    for (int hop = 0;; hop++) {
        int rc = hub_http_head(c->http, url, r);
        if (rc) {
            free(url);
            return rc;
        }
        if (r->status / 100 != 3 || !r->location || r->location[0] != '/' || r->location[1] == '/' || hop >= 5) break;
        char *origin_end = strstr(c->endpoint, "://");
        origin_end = origin_end ? origin_end + 3 + strcspn(origin_end + 3, "/") : c->endpoint;
        char *next = xsprintf("%.*s%s", (int)(origin_end - c->endpoint), c->endpoint, r->location);
        free(url);
        if (!(url = next)) return vc_errf(VC_ENOMEM, "out of memory");
    }
    *url_out = url;
    return VC_OK;
}

/* snapshots/COMMIT/FILE, downloading its blob unless the cache has it. */
static int fetch_file(hub_ctx *c, const char *file) {
    char *pointer = xsprintf("%s/snapshots/%s/%s", c->storage, c->commit, file);
    char *q = hub_url_quote(file, 1);
    char *url0 = q ? xsprintf("%s/%s/resolve/%s/%s", c->endpoint, c->repo, c->commit, q) : NULL;
    char *url = NULL, *etag = NULL, *blob = NULL, *get_url = NULL, *lock = NULL;
    int rc = VC_OK, lfd = -1;
    hub_resp r;
    memset(&r, 0, sizeof r);
    if (!pointer || !url0) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto done;
    }
    if (is_file(pointer)) goto done; /* the snapshot already has it (follows the link) */
    if ((rc = head_file(c, url0, &r, &url))) goto done;
    if (r.status / 100 != 2 && r.status / 100 != 3) {
        rc = http_error(c, &r, url, file);
        goto done;
    }
    if (!(etag = hub_etag_name(r.linked_etag ? r.linked_etag : r.etag))) {
        rc = vc_err_prefix(VC_EFORMAT, "%s", url);
        goto done;
    }
    /* X-Linked-Size is the LFS file's size; a redirect's own Content-Length is not the file's */
    long long size = r.linked_size >= 0 ? r.linked_size : r.status / 100 == 2 ? r.content_length : -1;
    if (r.status / 100 == 3 && r.location) { /* the CDN URL, as huggingface_hub downloads it */
        if (r.location[0] == '/') {
            const char *o = strstr(url, "://");
            o = o ? o + 3 + strcspn(o + 3, "/") : url;
            get_url = xsprintf("%.*s%s", (int)(o - url), url, r.location);
        } else {
            get_url = strdup(r.location);
        }
    } else {
        get_url = strdup(url);
    }
    blob = xsprintf("%s/blobs/%s", c->storage, etag);
    lock = xsprintf("%s/%s.lock", c->locks, etag);
    if (!get_url || !blob || !lock) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto done;
    }
    if (!is_file(blob)) {
        /* one writer per blob, across processes (Python's filelock takes the same flock) */
        if ((rc = mkdir_p(c->locks)) || (rc = mkdir_parent(blob))) goto done;
        lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (lfd < 0) {
            rc = vc_errf(VC_EIO, "cannot open the lock %s: %s", lock, strerror(errno));
            goto done;
        }
        while (flock(lfd, LOCK_EX) && errno == EINTR) {}
        if (!is_file(blob) && (rc = download_blob(c, file, get_url, blob, size))) goto done;
    }
    rc = make_link(pointer, file, etag);
done:
    if (lfd >= 0) close(lfd); /* releases the flock */
    hub_resp_free(&r);
    free(pointer);
    free(q);
    free(url0);
    free(url);
    free(etag);
    free(blob);
    free(get_url);
    free(lock);
    return rc;
}

/* GET the model info of repo@revision. On failure *fallback says whether the cache may stand in
 * (everything but an unknown revision, as snapshot_download). */
static int get_info(hub_ctx *c, char ***files, int *n, int *fallback) {
    char *rev = hub_url_quote(c->revision, 0);
    char *url = rev ? xsprintf("%s/api/models/%s/revision/%s", c->endpoint, c->repo, rev) : NULL;
    hub_resp r;
    memset(&r, 0, sizeof r);
    int rc;
    *fallback = 1;
    if (!url) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
    } else if (!(rc = hub_http_get_mem(c->http, url, HUB_MAX_INFO, &r))) {
        if (r.status == 200) {
            rc = hub_parse_info(r.body, r.body_len, url, c->commit, files, n);
        } else {
            rc = http_error(c, &r, url, NULL);
            if (r.error_code && !strcmp(r.error_code, "RevisionNotFound")) *fallback = 0;
        }
    }
    hub_resp_free(&r);
    free(rev);
    free(url);
    return rc;
}

static int resolve_online(hub_ctx *c, char **snapshot) {
    char **files = NULL, **weights = NULL, *index = NULL, *index_path = NULL;
    int n = 0, nw = 0, rc, fallback;
    size_t index_len = 0;
    if ((rc = get_info(c, &files, &n, &fallback))) {
        char saved[1024], commit[41];
        snprintf(saved, sizeof saved, "%s", vc_errmsg());
        char *snap = fallback ? cached_snapshot(c->storage, c->revision, commit) : NULL;
        if (snap) {
            warnf("%s; using the cached snapshot %s of %s (revision %s)", saved, commit, c->repo, c->revision);
            *snapshot = snap;
            return VC_OK;
        }
        return rc;
    }
    int has_index = has_str(files, n, HUB_INDEX);
    if (!has_str(files, n, "config.json") && !has_str(files, n, "adapter_config.json")) { /* a model, or a LoRA adapter */
        rc = vc_errf(VC_EUNSUP, "%s has no config.json (not a transformers model?) nor adapter_config.json (not a PEFT "
                     "adapter)", c->repo);
        goto done;
    }
    if (!has_index && (rc = hub_weight_files(c->repo, files, n, NULL, 0, &weights, &nw))) goto done;
    if (strcmp(c->revision, c->commit) && (rc = write_ref(c->storage, c->revision, c->commit))) goto done;
    for (int i = 0; i < n; i++)
        if ((hub_wanted_config(files[i]) || !strcmp(files[i], HUB_INDEX)) && (rc = fetch_file(c, files[i])))
            goto done;
    if (has_index) {
        index_path = xsprintf("%s/snapshots/%s/%s", c->storage, c->commit, HUB_INDEX);
        if (!index_path) {
            rc = vc_errf(VC_ENOMEM, "out of memory");
            goto done;
        }
        if ((rc = vc_read_file(index_path, HUB_MAX_INDEX, &index, &index_len)) ||
            (rc = hub_weight_files(c->repo, files, n, index, index_len, &weights, &nw)))
            goto done;
    }
    for (int i = 0; i < nw; i++)
        if ((rc = fetch_file(c, weights[i]))) goto done;
    if (!(*snapshot = xsprintf("%s/snapshots/%s", c->storage, c->commit))) rc = vc_errf(VC_ENOMEM, "out of memory");
done:
    hub_free_strs(files, n);
    hub_free_strs(weights, nw);
    free(index);
    free(index_path);
    return rc;
}

int hub_resolve(const char *model, const hub_opts *o, char **local_dir) {
    *local_dir = NULL;
    hub_opts def = {NULL, NULL, -1};
    if (!o) o = &def;
    struct stat st;
    if (!stat(model, &st)) {
        if (!S_ISDIR(st.st_mode)) return vc_errf(VC_EINVAL, "%s is not a model directory", model);
        *local_dir = strdup(model);
        return *local_dir ? VC_OK : vc_errf(VC_ENOMEM, "out of memory");
    }
    if (!hub_repo_id_valid(model))
        return vc_errf(VC_EINVAL, "no such model directory: %s (nor is it a Hugging Face repo id ORG/NAME)", model);
    const char *revision = o->revision && *o->revision ? o->revision : "main";
    if (!hub_path_safe(revision) || strlen(revision) > 255)
        return vc_errf(VC_EINVAL, "--revision '%.100s' is not a valid revision", revision);
    hub_ctx c = {.repo = model, .revision = revision};
    char *cache = NULL, *folder = NULL, *token = NULL;
    int rc = hub_cache_dir(o->cache_dir, &cache);
    if (rc) return rc;
    folder = hub_repo_folder(model);
    c.storage = folder ? xsprintf("%s/%s", cache, folder) : NULL;
    c.locks = folder ? xsprintf("%s/.locks/%s", cache, folder) : NULL;
    if (!c.storage || !c.locks) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto done;
    }
    if (env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE")) { /* no network at all */
        char commit[41];
        if (!(*local_dir = cached_snapshot(c.storage, revision, commit)))
            rc = vc_errf(VC_EIO,
                         "HF_HUB_OFFLINE is set and %s (revision %s) is not in the cache %s: run once without "
                         "HF_HUB_OFFLINE to download it",
                         model, revision, cache);
        goto done;
    }
    const char *ep = env_nonempty("HF_ENDPOINT");
    c.endpoint = strdup(ep ? ep : HUB_DEFAULT_ENDPOINT);
    if (!c.endpoint) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = strlen(c.endpoint); k && c.endpoint[k - 1] == '/';) c.endpoint[--k] = 0;
    token = read_token();
    c.has_token = token != NULL;
    c.progress = o->progress >= 0 ? o->progress : isatty(2) && !env_true("HF_HUB_DISABLE_PROGRESS_BARS");
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
        rc = vc_errf(VC_ERR, "cannot initialise libcurl");
        goto done;
    }
    rc = hub_http_init(&c.http, c.endpoint, token, env_seconds("HF_HUB_ETAG_TIMEOUT", 10),
                       env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10));
    if (!rc) rc = resolve_online(&c, local_dir);
    hub_http_free(c.http);
    curl_global_cleanup();
done:
    if (token) memset(token, 0, strlen(token));
    free(token);
    free(cache);
    free(folder);
    free(c.storage);
    free(c.locks);
    free(c.endpoint);
    return rc;
}
