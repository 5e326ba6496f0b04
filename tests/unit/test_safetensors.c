/* test_safetensors: header parsing from memory, and folders of files on disk
 * (single file, sharded with an index, and every class of broken input). Every
 * error case checks the code and that the message names the file and tensor. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "model/safetensors.h"
#include "test.h"

static void expect_err_at(int line, int rc, int code, const char *a, const char *b) {
    const char *m = vc_errmsg();
    CHECK_MSG(rc == code, "line %d: rc %d, want %d (%s)", line, rc, code, m);
    CHECK_MSG(!a || strstr(m, a), "line %d: message '%s' lacks '%s'", line, m, a);
    CHECK_MSG(!b || strstr(m, b), "line %d: message '%s' lacks '%s'", line, m, b);
}
#define EXPECT_ERR(rc, code, a, b) expect_err_at(__LINE__, rc, code, a, b)

/* u64 LE header length + header + data. */
static unsigned char *blob(const char *hdr, const void *data, size_t dlen, size_t *len) {
    size_t h = strlen(hdr);
    unsigned char *b = malloc(8 + h + dlen + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    if (dlen) {
        if (data) memcpy(b + 8 + h, data, dlen);
        else memset(b + 8 + h, 0, dlen);
    }
    *len = 8 + h + dlen;
    return b;
}

static void put_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(fwrite(buf, 1, len, f) == len);
    fclose(f);
}

static void put_st(const char *path, const char *hdr, const void *data, size_t dlen) {
    size_t len;
    unsigned char *b = blob(hdr, data, dlen, &len);
    put_file(path, b, len);
    free(b);
}

static void put_text(const char *path, const char *text) { put_file(path, text, strlen(text)); }

static char tmp_root[64];

static const char *sub(const char *name) {
    static char buf[4][256];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 256, "%s/%s", tmp_root, name);
    return p;
}

static const char *mkd(const char *name) {
    const char *p = sub(name);
    CHECK(mkdir(p, 0700) == 0);
    return p;
}

static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            rm_tree(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Good header: names out of order, metadata, F32/F16/BF16, scalar, zero-size. */
static const char *GOOD_HDR =
    "{\"c\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[32,40]},"
    "\"__metadata__\":{\"format\":\"pt\"},"
    "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[44,44]},"
    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[40,44]},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]}}";

static void good_data(unsigned char d[44]) {
    float a[6] = {0, 1, 2, 3, 4, 5}, s = 7.5f;
    uint16_t h[4] = {0x3c00, 0x4000, 0x3e00, 0xbc00};   /* f16 1, 2, 1.5, -1 */
    uint16_t bf[4] = {0x3f80, 0x4000, 0x3fc0, 0xbf80};  /* bf16 1, 2, 1.5, -1 */
    memcpy(d, a, 24);
    memcpy(d + 24, h, 8);
    memcpy(d + 32, bf, 8);
    memcpy(d + 40, &s, 4);
}

static void test_parse_good(void) {
    unsigned char d[44];
    good_data(d);
    size_t len;
    unsigned char *b = blob(GOOD_HDR, d, sizeof d, &len);
    st_tensor *t = NULL;
    int n = -1;
    int rc = st_parse(b, len, "mem.safetensors", &t, &n);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(n == 5);
    if (rc == 0 && n == 5) {
        const char *names[5] = {"a.weight", "b", "c", "s", "z"};
        for (int i = 0; i < 5; i++) CHECK(strcmp(t[i].name, names[i]) == 0);
        CHECK(t[0].dtype == ST_F32 && t[0].ndim == 2 && t[0].shape[0] == 2 && t[0].shape[1] == 3);
        CHECK(t[0].nbytes == 24 && t[0].data == b + 8 + strlen(GOOD_HDR));
        float f;
        memcpy(&f, (const unsigned char *)t[0].data + 20, 4);
        CHECK(f == 5.0f);
        CHECK(t[1].dtype == ST_F16 && t[1].nbytes == 8);
        uint16_t h;
        memcpy(&h, (const unsigned char *)t[1].data + 4, 2);
        CHECK(h == 0x3e00);
        CHECK(t[2].dtype == ST_BF16 && t[2].nbytes == 8 && t[2].ndim == 2);
        memcpy(&h, (const unsigned char *)t[2].data + 6, 2);
        CHECK(h == 0xbf80);
        CHECK(t[3].ndim == 0 && t[3].nbytes == 4);
        memcpy(&f, t[3].data, 4);
        CHECK(f == 7.5f);
        CHECK(t[4].ndim == 2 && t[4].shape[0] == 0 && t[4].nbytes == 0);
    }
    st_tensors_free(t, n);
    free(b);

    /* space padding after the JSON, empty header, metadata only */
    const char *ok[] = {"{\"s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}     \n ",
                        "{}", "{\"__metadata__\":{\"a\":\"b\"}}"};
    int want[] = {1, 0, 0};
    for (int i = 0; i < 3; i++) {
        b = blob(ok[i], NULL, 1, &len);
        rc = st_parse(b, len, "mem", &t, &n);
        CHECK_MSG(rc == 0 && n == want[i], "case %d: %s", i, vc_errmsg());
        st_tensors_free(t, n);
        free(b);
    }

    /* a name given twice: the last entry counts (js_parse keeps a duplicate key's last value) */
    b = blob("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", NULL, 2, &len);
    rc = st_parse(b, len, "mem", &t, &n);
    CHECK_MSG(rc == 0 && n == 1 && t[0].data == b + len - 1, "%s", vc_errmsg());
    st_tensors_free(t, n);
    free(b);

    /* zero dim next to a huge one is an empty tensor, not an overflow */
    b = blob("{\"e\":{\"dtype\":\"F64\",\"shape\":[0,9007199254740992,4],\"data_offsets\":[0,0]}}", NULL, 0, &len);
    rc = st_parse(b, len, "mem", &t, &n);
    CHECK_MSG(rc == 0 && n == 1 && t[0].nbytes == 0, "%s", vc_errmsg());
    st_tensors_free(t, n);
    free(b);

    CHECK(st_dtype_size(ST_BF16) == 2 && st_dtype_size(ST_U64) == 8 && st_dtype_size(ST_F8_E5M2) == 1);
    CHECK(strcmp(st_dtype_name(ST_F8_E4M3), "F8_E4M3") == 0 && strcmp(st_dtype_name(ST_I16), "I16") == 0);
    CHECK(st_dtype_size((st_dtype)99) == 0 && st_dtype_name((st_dtype)-1) != NULL);
}

static void test_parse_bad_headers(void) {
    static const struct {
        const char *hdr;
        size_t dlen;
        int code;
        const char *a, *b;
    } cases[] = {
        {"[]", 0, VC_EFORMAT, "not a JSON object", NULL},
        {"{\"t\": 5}", 0, VC_EFORMAT, "tensor 't'", "not an object"},
        {"{\"t\":{\"dtype\":\"F4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, VC_EUNSUP, "tensor 't'", "'F4'"},
        {"{\"t\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, VC_EFORMAT, "tensor 't'", "dtype"},
        {"{\"t\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,1]}}", 1, VC_EFORMAT, "tensor 't'", "dtype"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":\"x\",\"data_offsets\":[0,1]}}", 1, VC_EFORMAT, "tensor 't'", "shape"},
        {"{\"t\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, VC_EFORMAT, "tensor 't'", "shape"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, VC_EFORMAT, "tensor 't'", "shape[0]"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1.5],\"data_offsets\":[0,1]}}", 1, VC_EFORMAT, "tensor 't'", "shape[1]"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[\"2\"],\"data_offsets\":[0,1]}}", 1, VC_EFORMAT, "tensor 't'", "shape[0]"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,1]}}", 1, VC_EFORMAT, "tensor 't'", "shape[0]"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, VC_EUNSUP,
         "tensor 't'", "9 dimensions"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1, VC_EFORMAT, "tensor 't'", "data_offsets"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, VC_EFORMAT, "tensor 't'",
         "data_offsets"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":\"0,1\"}}", 1, VC_EFORMAT, "tensor 't'",
         "data_offsets"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,-1]}}", 1, VC_EFORMAT, "tensor 't'",
         "data_offsets"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, VC_EFORMAT, "tensor 't'", "data_offsets"},
        {"{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, VC_EFORMAT, "tensor 't'",
         "begin after end"},
        {"{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]}}", 64, VC_EFORMAT,
         "mem.safetensors: tensor 'model.norm.weight': data_offsets [0,100] exceed data area of 64 bytes", NULL},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, VC_EFORMAT, "tensor 't'",
         "needs 8"},
        {"{\"t\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 8, VC_EFORMAT, "tensor 't'",
         "[2,2]"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, VC_EFORMAT,
         "tensor 't'", "too many elements"},
        {"{\"t\":{\"dtype\":\"F64\",\"shape\":[1125899906842624,8192],\"data_offsets\":[0,0]}}", 0, VC_EFORMAT,
         "tensor 't'", "overflows"},
        {"{} x", 0, VC_EFORMAT, "mem.safetensors", "not valid JSON"},
        {"{\"t\":", 0, VC_EFORMAT, "mem.safetensors", "not valid JSON"},
        {"", 4, VC_EFORMAT, "mem.safetensors", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        unsigned char *b = blob(cases[i].hdr, NULL, cases[i].dlen, &len);
        st_tensor *t = (st_tensor *)1;
        int n = 7;
        int rc = st_parse(b, len, "mem.safetensors", &t, &n);
        expect_err_at((int)(1000 + i), rc, cases[i].code, cases[i].a, cases[i].b);
        CHECK(t == NULL && n == 0);
        CHECK(strstr(vc_errmsg(), "mem.safetensors") != NULL);
        free(b);
    }
}

static void test_parse_bad_sizes(void) {
    st_tensor *t;
    int n;
    EXPECT_ERR(st_parse(NULL, 0, "empty.safetensors", &t, &n), VC_EFORMAT, "empty.safetensors", "too small");
    unsigned char five[5] = {2, 0, 0, 0, 0};
    EXPECT_ERR(st_parse(five, 5, "five.safetensors", &t, &n), VC_EFORMAT, "five.safetensors", "too small");
    unsigned char huge[16];
    memset(huge, 0xff, sizeof huge);
    EXPECT_ERR(st_parse(huge, sizeof huge, "h.safetensors", &t, &n), VC_EFORMAT, "h.safetensors", "absurd");
    unsigned char trunc[40] = {0xe8, 0x03}; /* 1000-byte header in a 40-byte file */
    memcpy(trunc + 8, "{\"a\":", 5);
    EXPECT_ERR(st_parse(trunc, sizeof trunc, "t.safetensors", &t, &n), VC_EFORMAT, "t.safetensors",
               "exceeds file size of 40 bytes");
    unsigned char zero[8] = {0};
    EXPECT_ERR(st_parse(zero, 8, "z.safetensors", &t, &n), VC_EFORMAT, "z.safetensors", "not valid JSON");
}

static const char *SH1 = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                         "\"y\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}";
static const char *SH2 = "{\"z\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[0,4]}}";
static const char *IDX = "{\"metadata\":{\"total_size\":15},\"weight_map\":{"
                         "\"x\":\"model-00001-of-00002.safetensors\",\"y\":\"model-00001-of-00002.safetensors\","
                         "\"z\":\"model-00002-of-00002.safetensors\"}}";

static void write_shards(const char *dir) {
    char p[512];
    unsigned char d1[11] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 7, 8, 9}, d2[4] = {0x80, 0x3f, 0x00, 0x40};
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    put_st(p, SH1, d1, sizeof d1);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    put_st(p, SH2, d2, sizeof d2);
}

static void write_index(const char *dir, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    put_text(p, text);
}

static void test_dir_single(void) {
    unsigned char d[44];
    good_data(d);
    st_set s;
    const char *dir = mkd("single");
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    put_st(path, GOOD_HDR, d, sizeof d);
    snprintf(path, sizeof path, "%s/other.safetensors", dir); /* ignored: model.safetensors wins */
    put_st(path, "{}", NULL, 0);
    int rc = st_set_open_dir(dir, &s);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(s.n_files == 1 && s.n_tensors == 5);
    const st_tensor *t = st_find(&s, "s");
    CHECK(t && t->ndim == 0 && t->nbytes == 4);
    if (t) {
        float f;
        memcpy(&f, t->data, 4);
        CHECK(f == 7.5f);
    }
    CHECK(st_find(&s, "a.weight") && st_find(&s, "z") && st_find(&s, "b") && st_find(&s, "c"));
    CHECK(st_find(&s, "nope") == NULL && st_find(&s, "") == NULL && st_find(&s, NULL) == NULL);
    CHECK(s.n_files == 1 && strstr(s.files[0].path, "single/model.safetensors"));
    st_set_free(&s);
    CHECK(s.files == NULL && s.tensors == NULL && s.n_files == 0);
    st_set_free(&s); /* twice is fine */

    /* the only *.safetensors file, whatever its name */
    dir = mkd("only");
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    put_st(path, GOOD_HDR, d, sizeof d);
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    put_text(path, "x");
    rc = st_set_open_dir(dir, &s);
    CHECK_MSG(rc == 0 && s.n_tensors == 5, "%s", vc_errmsg());
    st_set_free(&s);

    /* several without an index */
    dir = mkd("several");
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    put_st(path, "{}", NULL, 0);
    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    put_st(path, "{}", NULL, 0);
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "a.safetensors, b.safetensors", "no model.safetensors.index.json");
    CHECK(s.files == NULL && s.n_tensors == 0);

    /* none */
    dir = mkd("none");
    char want[300];
    snprintf(want, sizeof want, "%s: no *.safetensors file", dir);
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EIO, want, NULL);
    EXPECT_ERR(st_set_open_dir(sub("does-not-exist"), &s), VC_EIO, "does-not-exist", NULL);

    /* empty and truncated files */
    dir = mkd("empty");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    put_text(path, "");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, path, "too small");
    dir = mkd("trunc");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t len;
    unsigned char *b = blob(GOOD_HDR, d, sizeof d, &len);
    put_file(path, b, 60); /* header cut in the middle */
    free(b);
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, path, "exceeds file size of 60 bytes");
    b = blob(GOOD_HDR, d, sizeof d, &len);
    put_file(path, b, len - 4); /* data area cut short */
    free(b);
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, path, "exceed data area of 40 bytes");
    CHECK(s.files == NULL && s.tensors == NULL);
}

static void test_dir_sharded(void) {
    st_set s;
    const char *dir = mkd("sharded");
    write_shards(dir);
    write_index(dir, IDX);
    char path[512];
    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir); /* not in the index: ignored */
    put_text(path, "garbage");
    int rc = st_set_open_dir(dir, &s);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(s.n_files == 2 && s.n_tensors == 3);
    const st_tensor *x = st_find(&s, "x"), *y = st_find(&s, "y"), *z = st_find(&s, "z");
    CHECK(x && y && z);
    if (x && y && z) {
        CHECK(x->file == 0 && y->file == 0 && z->file == 1);
        CHECK(strstr(s.files[z->file].path, "model-00002-of-00002.safetensors") != NULL);
        float f;
        memcpy(&f, (const char *)x->data + 4, 4);
        CHECK(f == 2.0f);
        CHECK(((const unsigned char *)y->data)[2] == 9);
        CHECK(z->dtype == ST_BF16 && z->nbytes == 4 && ((const unsigned char *)z->data)[1] == 0x3f);
    }
    st_set_free(&s);

    /* st_set_open_files on the same shards */
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", dir);
    const char *paths[2] = {p2, p1};
    rc = st_set_open_files(paths, 2, &s);
    CHECK_MSG(rc == 0 && s.n_tensors == 3 && st_find(&s, "z")->file == 0, "%s", vc_errmsg());
    st_set_free(&s);
    const char *dup[2] = {p1, p1};
    EXPECT_ERR(st_set_open_files(dup, 2, &s), VC_EFORMAT, "tensor 'x'", "appears in both");

    /* listed tensor missing from its shard */
    dir = mkd("idx-missing");
    write_shards(dir);
    write_index(dir, "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
                     "\"w\":\"model-00001-of-00002.safetensors\",\"z\":\"model-00002-of-00002.safetensors\"}}");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "idx-missing/model.safetensors.index.json", "tensor 'w'");
    CHECK(s.files == NULL && s.tensors == NULL);

    /* listed for the wrong shard */
    dir = mkd("idx-wrong");
    write_shards(dir);
    write_index(dir, "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
                     "\"z\":\"model-00001-of-00002.safetensors\",\"y\":\"model-00002-of-00002.safetensors\"}}");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "model.safetensors.index.json", "found in");

    /* shard names that leave the folder */
    dir = mkd("idx-escape");
    write_shards(dir);
    write_index(dir, "{\"weight_map\":{\"x\":\"../model-00001-of-00002.safetensors\"}}");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "tensor 'x'", "../model-00001");
    write_index(dir, "{\"weight_map\":{\"x\":\"sub/model-00001-of-00002.safetensors\"}}");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "tensor 'x'", "not a plain file name");

    /* a shard that is not there */
    dir = mkd("idx-noshard");
    write_shards(dir);
    write_index(dir, "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
                     "\"q\":\"model-00003-of-00003.safetensors\"}}");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EIO, "idx-noshard/model-00003-of-00003.safetensors", NULL);

    /* the same tensor in two shards */
    dir = mkd("idx-dup");
    snprintf(p1, sizeof p1, "%s/a.safetensors", dir);
    put_st(p1, SH2, "abcd", 4);
    snprintf(p1, sizeof p1, "%s/b.safetensors", dir);
    put_st(p1, SH2, "abcd", 4);
    write_index(dir, "{\"weight_map\":{\"z\":\"a.safetensors\",\"zz\":\"b.safetensors\"}}");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "tensor 'z' appears in both", "b.safetensors");

    /* a broken shard, a broken index */
    dir = mkd("idx-bad");
    write_shards(dir);
    snprintf(p1, sizeof p1, "%s/model-00002-of-00002.safetensors", dir);
    put_text(p1, "1234");
    write_index(dir, IDX);
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "model-00002-of-00002.safetensors", "too small");
    write_index(dir, "{\"weight_map\": {");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "idx-bad/model.safetensors.index.json", "invalid JSON");
    write_index(dir, "{\"weight_map\": {}}");
    EXPECT_ERR(st_set_open_dir(dir, &s), VC_EFORMAT, "model.safetensors.index.json", "empty");
    CHECK(s.files == NULL && s.n_files == 0);
}

static void test_parse_index(void) {
    char **f = NULL;
    int n = 0;
    const char *j = "{\"weight_map\":{\"a\":\"s2\",\"b\":\"s1\",\"c\":\"s2\",\"d\":\"s1\",\"e\":\"s3\"}}";
    int rc = st_parse_index(j, strlen(j), "i.json", &f, &n);
    CHECK_MSG(rc == 0 && n == 3, "%s", vc_errmsg());
    if (rc == 0 && n == 3) CHECK(!strcmp(f[0], "s1") && !strcmp(f[1], "s2") && !strcmp(f[2], "s3"));
    for (int i = 0; i < n; i++) free(f[i]);
    free(f);
    static const struct {
        const char *j, *a;
    } bad[] = {
        {"[1]", "weight_map"},
        {"{}", "weight_map"},
        {"{\"weight_map\":[]}", "weight_map"},
        {"{\"weight_map\":{\"t\":3}}", "tensor 't'"},
        {"{\"weight_map\":{\"t\":\"\"}}", "tensor 't'"},
        {"{\"weight_map\":{\"t\":\"..\"}}", "tensor 't'"},
        {"{\"weight_map\":{\"t\":\"/etc/passwd\"}}", "tensor 't'"},
        {"{\"weight_map\":{}} trailing", "invalid JSON"},
        {"", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = (char **)1;
        n = 5;
        rc = st_parse_index(bad[i].j, strlen(bad[i].j), "i.json", &f, &n);
        expect_err_at((int)(2000 + i), rc, VC_EFORMAT, "i.json", bad[i].a);
        CHECK(f == NULL && n == 0);
    }
}

int main(void) {
    st_set zero;
    memset(&zero, 0, sizeof zero);
    st_set_free(&zero);
    st_set_free(NULL);
    st_tensors_free(NULL, 0);

    snprintf(tmp_root, sizeof tmp_root, "/tmp/vllmc_st_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_parse_good();
    test_parse_bad_headers();
    test_parse_bad_sizes();
    test_parse_index();
    test_dir_single();
    test_dir_sharded();
    rm_tree(tmp_root);
    TEST_END();
}
