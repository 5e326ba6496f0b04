/* safetensors: header parsing over a mapped file, and sets of shard files.
 *
 * Every number in the header is untrusted: offsets, shapes and byte counts are
 * checked in 64-bit unsigned arithmetic with explicit overflow tests before any
 * pointer into the data area is formed. JSON numbers are doubles in cJSON, so
 * integers are only accepted when exact (0 <= n <= 2^53).
 *
 * The JSON header is parsed in place by js_parse (base/json.h), which reads
 * exactly its bytes (cJSON releases before 1.7.18 could read one byte past a
 * buffer that is not NUL-terminated, CVE-2023-53154). A tensor named twice in
 * the header keeps its last entry, as the map the reference implementation
 * deserializes into does. Tensor data is never copied. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../base/json.h"

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* larger headers are not real files */
#define ST_MAX_INDEX ((size_t)256 << 20)    /* model.safetensors.index.json */
#define ST_JSON_INT_MAX 9007199254740992.0  /* 2^53: above this doubles are inexact */
#define ST_INDEX_NAME "model.safetensors.index.json"

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    [ST_F32] = {"F32", 4},        [ST_F16] = {"F16", 2},         [ST_BF16] = {"BF16", 2},
    [ST_F64] = {"F64", 8},        [ST_I64] = {"I64", 8},         [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},        [ST_I8] = {"I8", 1},           [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1},      [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
    [ST_U16] = {"U16", 2},        [ST_U32] = {"U32", 4},         [ST_U64] = {"U64", 8},
};
#define ST_N_DTYPES ((unsigned)(sizeof st_dtypes / sizeof st_dtypes[0]))

size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_N_DTYPES ? st_dtypes[t].size : 0; }

const char *st_dtype_name(st_dtype t) { return (unsigned)t < ST_N_DTYPES ? st_dtypes[t].name : "?"; }

static char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static int st_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int st_cmp_tensor(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* Parse `len` bytes of JSON that need not be NUL-terminated (see the header
 * comment). Only whitespace may follow the value. On a syntax error *pos is the
 * byte offset where the text went wrong. */
static int st_json_parse(const char *text, size_t len, cJSON **out, size_t *pos) {
    js_error e;
    *out = js_parse(text, len, &e);
    *pos = *out ? len : e.offset;
    if (!*out) return e.oom ? VC_ENOMEM : VC_EFORMAT;
    return VC_OK;
}

/* A JSON number that is an exact non-negative integer. */
static int st_json_u64(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= ST_JSON_INT_MAX)) return 0;
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return 0;
    *v = u;
    return 1;
}

static const char *st_json_kind(const cJSON *j) {
    if (!j) return "missing";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "invalid";
}

static void st_fmt_shape(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t n = 0;
    n += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* One header entry. The name is duplicated last, so a failure leaves *t without
 * allocations. */
static int st_parse_entry(const cJSON *e, const char *what, const unsigned char *data,
                          size_t data_size, st_tensor *t) {
    const char *name = e->string ? e->string : "";
    memset(t, 0, sizeof *t);
    if (!cJSON_IsObject(e))
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': entry is %s, not an object", what, name,
                       st_json_kind(e));

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(jd) || !jd->valuestring)
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': dtype is %s, not a string", what, name,
                       st_json_kind(jd));
    unsigned dt = 0;
    while (dt < ST_N_DTYPES && strcmp(st_dtypes[dt].name, jd->valuestring) != 0) dt++;
    if (dt == ST_N_DTYPES)
        return vc_errf(VC_EUNSUP, "%s: tensor '%.200s': unknown dtype '%.40s'", what, name,
                       jd->valuestring);
    t->dtype = (st_dtype)dt;

    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(js))
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': shape is %s, not an array", what, name,
                       st_json_kind(js));
    int ndim = cJSON_GetArraySize(js);
    if (ndim > ST_MAX_DIMS)
        return vc_errf(VC_EUNSUP, "%s: tensor '%.200s': shape has %d dimensions (at most %d)", what,
                       name, ndim, ST_MAX_DIMS);
    uint64_t nelem = 1;
    int zero = 0, overflow = 0;
    const cJSON *d = js->child;
    for (int i = 0; i < ndim; i++, d = d->next) {
        uint64_t v;
        if (!st_json_u64(d, &v))
            return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': shape[%d] is not a non-negative integer",
                           what, name, i);
        t->shape[i] = (int64_t)v;
        if (v == 0) zero = 1;
        else if (nelem > UINT64_MAX / v) overflow = 1;
        else nelem *= v;
    }
    t->ndim = ndim;
    char shp[128];
    st_fmt_shape(shp, sizeof shp, t->shape, ndim);
    uint64_t esz = st_dtypes[dt].size;
    if (zero) nelem = 0;
    if (overflow && !zero)
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': shape %s has too many elements", what, name,
                       shp);
    if (nelem > UINT64_MAX / esz)
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': shape %s of %s overflows a 64-bit size", what,
                       name, shp, st_dtypes[dt].name);
    uint64_t need = nelem * esz;

    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t b, en;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !st_json_u64(jo->child, &b) ||
        !st_json_u64(jo->child->next, &en))
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': data_offsets must be two non-negative integers",
                       what, name);
    if (b > en)
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': data_offsets [%llu,%llu] begin after end", what,
                       name, (unsigned long long)b, (unsigned long long)en);
    if (en > data_size)
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s': data_offsets [%llu,%llu] exceed data area of %zu bytes",
                       what, name, (unsigned long long)b, (unsigned long long)en, data_size);
    if (en - b != need)
        return vc_errf(VC_EFORMAT,
                       "%s: tensor '%.200s': data_offsets [%llu,%llu] hold %llu bytes but shape %s of %s needs %llu",
                       what, name, (unsigned long long)b, (unsigned long long)en,
                       (unsigned long long)(en - b), shp, st_dtypes[dt].name, (unsigned long long)need);
    t->data = data + b;
    t->nbytes = (size_t)need;
    t->name = st_strdup(name);
    if (!t->name) return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    return VC_OK;
}

int st_parse(const void *buf, size_t size, const char *what, st_tensor **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    if (!what) what = "safetensors";
    if (!buf || size < 8)
        return vc_errf(VC_EFORMAT, "%s: file too small for a safetensors header (%zu bytes, need at least 8)",
                       what, buf ? size : 0);
    const unsigned char *p = buf;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > ST_MAX_HEADER)
        return vc_errf(VC_EFORMAT, "%s: header length %llu is absurd (limit %llu bytes); not a safetensors file?",
                       what, (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    if (hlen > size - 8)
        return vc_errf(VC_EFORMAT, "%s: header length %llu exceeds file size of %zu bytes (truncated file?)",
                       what, (unsigned long long)hlen, size);
    const unsigned char *data = p + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;

    st_tensor *ts = NULL;
    int n = 0, rc;
    cJSON *root = NULL;
    size_t pos;
    rc = st_json_parse((const char *)p + 8, (size_t)hlen, &root, &pos);
    if (rc == VC_ENOMEM) {
        rc = vc_errf(rc, "%s: out of memory", what);
        goto done;
    }
    if (rc) {
        rc = vc_errf(rc, "%s: header is not valid JSON (at byte %zu of %llu)", what, pos,
                     (unsigned long long)hlen);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        rc = vc_errf(VC_EFORMAT, "%s: header is %s, not a JSON object", what, st_json_kind(root));
        goto done;
    }
    int count = cJSON_GetArraySize(root);
    ts = calloc(count > 0 ? (size_t)count : 1, sizeof *ts);
    if (!ts) {
        rc = vc_errf(VC_ENOMEM, "%s: out of memory", what);
        goto done;
    }
    for (const cJSON *e = root->child; e && n < count; e = e->next) {
        if (e->string && strcmp(e->string, "__metadata__") == 0) continue;
        rc = st_parse_entry(e, what, data, data_size, &ts[n]);
        if (rc) goto done;
        n++;
    }
    qsort(ts, (size_t)n, sizeof *ts, st_cmp_tensor);
    for (int i = 1; i < n; i++) {
        if (strcmp(ts[i - 1].name, ts[i].name) == 0) {
            rc = vc_errf(VC_EFORMAT, "%s: tensor '%.200s' appears twice in the header", what, ts[i].name);
            goto done;
        }
    }
    if (n == 0) {
        free(ts);
        ts = NULL;
    }
    *out = ts;
    *n_out = n;
    ts = NULL;
    n = 0;
    rc = VC_OK;
done:
    st_tensors_free(ts, n);
    cJSON_Delete(root);
    return rc;
}

void st_tensors_free(st_tensor *t, int n) {
    if (!t) return;
    for (int i = 0; i < n; i++) free(t[i].name);
    free(t);
}

void st_set_free(st_set *s) {
    if (!s) return;
    st_tensors_free(s->tensors, s->n_tensors);
    if (s->files) {
        for (int i = 0; i < s->n_files; i++) {
            vc_map_free(&s->files[i].map);
            free(s->files[i].path);
        }
        free(s->files);
    }
    memset(s, 0, sizeof *s);
}

int st_set_open_files(const char *const *paths, int n, st_set *out) {
    memset(out, 0, sizeof *out);
    int rc = VC_OK;
    if (n < 0 || (n > 0 && !paths)) return vc_errf(VC_EINVAL, "st_set_open_files: bad arguments");
    if (n == 0) return VC_OK;
    out->files = calloc((size_t)n, sizeof *out->files);
    if (!out->files) {
        rc = vc_errf(VC_ENOMEM, "safetensors: out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        st_file *f = &out->files[i];
        f->path = st_strdup(paths[i]);
        if (!f->path) {
            rc = vc_errf(VC_ENOMEM, "%s: out of memory", paths[i]);
            goto fail;
        }
        out->n_files = i + 1;
        rc = vc_map_open(f->path, &f->map);
        if (rc) goto fail;
        st_tensor *ts;
        int nt;
        rc = st_parse(f->map.data, f->map.size, f->path, &ts, &nt);
        if (rc) goto fail;
        if (nt > 0) {
            st_tensor *all = NULL;
            if (nt <= 0x7fffffff - out->n_tensors)
                all = realloc(out->tensors, (size_t)(out->n_tensors + nt) * sizeof *all);
            if (!all) {
                st_tensors_free(ts, nt);
                rc = vc_errf(VC_ENOMEM, "%s: out of memory", f->path);
                goto fail;
            }
            out->tensors = all;
            for (int j = 0; j < nt; j++) {
                ts[j].file = i;
                all[out->n_tensors++] = ts[j];
            }
            free(ts); /* the names moved into out->tensors */
        }
    }
    if (out->n_tensors > 1) qsort(out->tensors, (size_t)out->n_tensors, sizeof *out->tensors, st_cmp_tensor);
    for (int i = 1; i < out->n_tensors; i++) {
        const st_tensor *a = &out->tensors[i - 1], *b = &out->tensors[i];
        if (strcmp(a->name, b->name) == 0) {
            rc = vc_errf(VC_EFORMAT, "tensor '%.200s' appears in both %s and %s", b->name,
                         out->files[a->file].path, out->files[b->file].path);
            goto fail;
        }
    }
    return VC_OK;
fail:
    st_set_free(out);
    return rc;
}

const st_tensor *st_find(const st_set *s, const char *name) {
    if (!s || !name || !s->tensors) return NULL;
    int lo = 0, hi = s->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(s->tensors[mid].name, name);
        if (c == 0) return &s->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static void st_free_strs(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Parse an index and return its root (for the caller to walk "weight_map") and
 * the sorted unique shard names. Every weight_map value is checked here. */
static int st_index_load(const char *json, size_t len, const char *what, cJSON **root_out,
                         char ***files, int *n_files) {
    *root_out = NULL;
    *files = NULL;
    *n_files = 0;
    if (!what) what = ST_INDEX_NAME;
    cJSON *root = NULL;
    char **names = NULL;
    int n = 0, rc;
    size_t pos;
    if (!json) len = 0;
    rc = st_json_parse(json ? json : "", len, &root, &pos);
    if (rc == VC_ENOMEM) {
        rc = vc_errf(rc, "%s: out of memory", what);
        goto fail;
    }
    if (rc) {
        rc = vc_errf(rc, "%s: invalid JSON (at byte %zu)", what, pos);
        goto fail;
    }
    const cJSON *wm = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        rc = vc_errf(VC_EFORMAT, "%s: no \"weight_map\" object", what);
        goto fail;
    }
    int count = cJSON_GetArraySize(wm);
    if (count <= 0) {
        rc = vc_errf(VC_EFORMAT, "%s: \"weight_map\" is empty", what);
        goto fail;
    }
    names = calloc((size_t)count, sizeof *names);
    if (!names) {
        rc = vc_errf(VC_ENOMEM, "%s: out of memory", what);
        goto fail;
    }
    for (const cJSON *e = wm->child; e && n < count; e = e->next) {
        const char *tn = e->string ? e->string : "";
        if (!cJSON_IsString(e) || !e->valuestring) {
            rc = vc_errf(VC_EFORMAT, "%s: weight_map entry for tensor '%.200s' is %s, not a file name",
                         what, tn, st_json_kind(e));
            goto fail;
        }
        const char *fn = e->valuestring;
        if (!fn[0] || strchr(fn, '/') || strstr(fn, "..")) {
            rc = vc_errf(VC_EFORMAT, "%s: tensor '%.200s': shard file name '%.200s' is not a plain file name",
                         what, tn, fn);
            goto fail;
        }
        names[n] = st_strdup(fn);
        if (!names[n]) {
            rc = vc_errf(VC_ENOMEM, "%s: out of memory", what);
            goto fail;
        }
        n++;
    }
    qsort(names, (size_t)n, sizeof *names, st_cmp_str);
    int u = 0; /* dedupe in place; slots from u on end up NULL */
    for (int i = 0; i < n; i++) {
        char *s = names[i];
        names[i] = NULL;
        if (u > 0 && strcmp(names[u - 1], s) == 0) free(s);
        else names[u++] = s;
    }
    *root_out = root;
    *files = names;
    *n_files = u;
    return VC_OK;
fail:
    st_free_strs(names, n);
    cJSON_Delete(root);
    return rc;
}

int st_parse_index(const char *json, size_t len, const char *what, char ***files, int *n_files) {
    cJSON *root;
    int rc = st_index_load(json, len, what, &root, files, n_files);
    cJSON_Delete(root);
    return rc;
}

/* DIR/model.safetensors.index.json: open every shard, then check that each
 * listed tensor really is in the shard the index names. */
static int st_open_index(const char *dir, const char *index_path, st_set *out) {
    char *text = NULL, **names = NULL, **paths = NULL;
    int n = 0, rc;
    size_t len = 0;
    cJSON *root = NULL;
    rc = vc_read_file(index_path, ST_MAX_INDEX, &text, &len);
    if (rc) goto done;
    rc = st_index_load(text, len, index_path, &root, &names, &n);
    if (rc) goto done;
    paths = calloc((size_t)n, sizeof *paths);
    if (!paths) {
        rc = vc_errf(VC_ENOMEM, "%s: out of memory", index_path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        paths[i] = vc_path_join(dir, names[i]);
        if (!paths[i]) {
            rc = vc_errf(VC_ENOMEM, "%s: out of memory", index_path);
            goto done;
        }
    }
    rc = st_set_open_files((const char *const *)paths, n, out);
    if (rc) goto done;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    for (const cJSON *e = wm->child; e; e = e->next) {
        const char *tn = e->string ? e->string : "";
        const char *key = e->valuestring;
        char **hit = bsearch(&key, names, (size_t)n, sizeof *names, st_cmp_str);
        int j = hit ? (int)(hit - names) : 0;
        const st_tensor *t = st_find(out, tn);
        if (!t) {
            rc = vc_errf(VC_EFORMAT, "%s: tensor '%.200s' is listed for %s but not found in it", index_path,
                         tn, paths[j]);
            goto done;
        }
        if (t->file != j) {
            rc = vc_errf(VC_EFORMAT, "%s: tensor '%.200s' is listed for %s but found in %s", index_path, tn,
                         paths[j], out->files[t->file].path);
            goto done;
        }
    }
done:
    if (rc) st_set_free(out);
    st_free_strs(paths, n);
    st_free_strs(names, n);
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* No index and no model.safetensors: the folder must hold exactly one
 * *.safetensors file (dot files are ignored). */
static int st_open_only(const char *dir, st_set *out) {
    char **names = NULL, *path = NULL;
    int n = 0, cap = 0, rc = VC_OK;
    DIR *d = opendir(dir);
    if (!d) return vc_errf(VC_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l <= 12 || strcmp(de->d_name + l - 12, ".safetensors") != 0) continue;
        char *full = vc_path_join(dir, de->d_name);
        if (!full) {
            rc = vc_errf(VC_ENOMEM, "%s: out of memory", dir);
            goto done;
        }
        int ok = vc_file_exists(full);
        free(full);
        if (!ok) continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 4;
            char **nn = nc > cap ? realloc(names, (size_t)nc * sizeof *nn) : NULL;
            if (!nn) {
                rc = vc_errf(VC_ENOMEM, "%s: out of memory", dir);
                goto done;
            }
            names = nn;
            cap = nc;
        }
        names[n] = st_strdup(de->d_name);
        if (!names[n]) {
            rc = vc_errf(VC_ENOMEM, "%s: out of memory", dir);
            goto done;
        }
        n++;
    }
    if (n == 0) {
        rc = vc_errf(VC_EIO, "%s: no *.safetensors file", dir);
        goto done;
    }
    if (n > 1) {
        qsort(names, (size_t)n, sizeof *names, st_cmp_str);
        char list[512];
        size_t k = 0;
        list[0] = 0;
        for (int i = 0; i < n && k < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i]);
        rc = vc_errf(VC_EFORMAT, "%s: %d *.safetensors files (%s) but no %s to say how they fit together",
                     dir, n, list, ST_INDEX_NAME);
        goto done;
    }
    path = vc_path_join(dir, names[0]);
    if (!path) {
        rc = vc_errf(VC_ENOMEM, "%s: out of memory", dir);
        goto done;
    }
    rc = st_set_open_files((const char *const *)&path, 1, out);
done:
    closedir(d);
    free(path);
    st_free_strs(names, n);
    return rc;
}

int st_set_open_dir(const char *dir, st_set *out) {
    memset(out, 0, sizeof *out);
    if (!dir) return vc_errf(VC_EINVAL, "st_set_open_dir: no directory");
    char *index = vc_path_join(dir, ST_INDEX_NAME), *single = vc_path_join(dir, "model.safetensors");
    int rc;
    if (!index || !single) rc = vc_errf(VC_ENOMEM, "%s: out of memory", dir);
    else if (vc_file_exists(index)) rc = st_open_index(dir, index, out);
    else if (vc_file_exists(single)) rc = st_set_open_files((const char *const *)&single, 1, out);
    else rc = st_open_only(dir, out);
    free(index);
    free(single);
    return rc;
}
