/* test_hub: the pure parts of Hub downloads: repo id validation (huggingface_hub's validate_repo_id),
 * the cache folder and its environment precedence, symlink targets for nested file names, ETag
 * normalisation, URL quoting, the choice of files to fetch, the model info parser and the progress
 * bar's number formats (tqdm's). The network side is tests/cli/test_hub.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "hub/hub.h"
#include "hub/hub_http.h"
#include "test.h"

static void check_str(int line, char *got, const char *want) {
    CHECK_MSG(got && !strcmp(got, want), "line %d: got '%s', want '%s'", line, got ? got : "(null)", want);
    free(got);
}
#define STR(got, want) check_str(__LINE__, got, want)

static void test_repo_ids(void) {
    const char *good[] = {"gpt2", "Qwen/Qwen2.5-0.5B-Instruct", "meta-llama/Llama-3.2-1B", "a/b", "org_1/x.y-z",
                          "_x/_y"};
    const char *bad[] = {"", "/", "a/", "/b", "a/b/c", "./model", "../m", "/abs/path", "org/-name", "org/name-",
                         "org/.name", "org/na--me", "org/na..me", "org/name.git", "org/na me", "org/na\\me",
                         "~/models/x", "org/ümlaut", NULL};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) CHECK_MSG(hub_repo_id_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; bad[i]; i++) CHECK_MSG(!hub_repo_id_valid(bad[i]), "'%s'", bad[i]);
    char name97[100];
    memset(name97, 'a', 97);
    name97[97] = 0;
    CHECK(!hub_repo_id_valid(name97));
    name97[96] = 0;
    CHECK(hub_repo_id_valid(name97));
}

static void test_paths(void) {
    STR(hub_repo_folder("Qwen/Qwen2.5-0.5B-Instruct"), "models--Qwen--Qwen2.5-0.5B-Instruct");
    STR(hub_repo_folder("gpt2"), "models--gpt2");
    STR(hub_symlink_target("config.json", "abc"), "../../blobs/abc");
    STR(hub_symlink_target("sub/model.safetensors", "e1"), "../../../blobs/e1");
    STR(hub_symlink_target("a/b/c.json", "e2"), "../../../../blobs/e2");
    CHECK(hub_is_commit("0123456789abcdef0123456789abcdef01234567"));
    CHECK(!hub_is_commit("0123456789ABCDEF0123456789abcdef01234567"));
    CHECK(!hub_is_commit("main"));
    CHECK(!hub_is_commit("0123456789abcdef0123456789abcdef0123456"));
    CHECK(hub_path_safe("config.json") && hub_path_safe("sub/x.safetensors") && hub_path_safe("refs/pr/1"));
    CHECK(hub_path_safe(".gitattributes") && hub_path_safe("a..b"));
    const char *unsafe[] = {"", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/", ".", "..", "a\\b", "a\nb"};
    for (size_t i = 0; i < sizeof unsafe / sizeof *unsafe; i++)
        CHECK_MSG(!hub_path_safe(unsafe[i]), "'%s'", unsafe[i]);
}

static void test_etag_quote(void) {
    STR(hub_etag_name("\"5dffbb74e955\""), "5dffbb74e955");
    STR(hub_etag_name("W/\"abc-123\""), "abc-123");
    STR(hub_etag_name("plain"), "plain");
    CHECK(!hub_etag_name("\"../../etc\""));
    CHECK(!hub_etag_name("\"a/b\""));
    CHECK(!hub_etag_name("\"\""));
    CHECK(!hub_etag_name(".hidden"));
    CHECK(!hub_etag_name(NULL));
    STR(hub_url_quote("refs/pr/1", 0), "refs%2Fpr%2F1");
    STR(hub_url_quote("sub dir/a+b.json", 1), "sub%20dir/a%2Bb.json");
    STR(hub_url_quote("v1.0_x-y~z", 0), "v1.0_x-y~z");
}

static void test_cache_dir(void) {
    char *s;
    const char *vars[] = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"};
    for (int i = 0; i < 4; i++) unsetenv(vars[i]);
    setenv("HOME", "/home/u", 1);
    CHECK(!hub_cache_dir(NULL, &s));
    STR(s, "/home/u/.cache/huggingface/hub");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK(!hub_cache_dir(NULL, &s));
    STR(s, "/xdg/huggingface/hub");
    setenv("HF_HOME", "~/hf", 1);
    CHECK(!hub_cache_dir(NULL, &s));
    STR(s, "/home/u/hf/hub");
    setenv("HF_HUB_CACHE", "/c", 1);
    CHECK(!hub_cache_dir(NULL, &s));
    STR(s, "/c");
    CHECK(!hub_cache_dir("", &s));
    STR(s, "/c");
    CHECK(!hub_cache_dir("dl", &s));
    STR(s, "dl");
    for (int i = 0; i < 4; i++) unsetenv(vars[i]);
}

static int pick(const char *const *files, int n, const char *index, char *joined, size_t len) {
    char **w = NULL;
    int nw = 0;
    int rc = hub_weight_files("o/r", (char *const *)files, n, index, index ? strlen(index) : 0, &w, &nw);
    joined[0] = 0;
    for (int i = 0; i < nw; i++) snprintf(joined + strlen(joined), len - strlen(joined), "%s%s", i ? "," : "", w[i]);
    hub_free_strs(w, nw);
    return rc;
}

static void test_weight_files(void) {
    char got[512];
    const char *mistral[] = {"config.json", "consolidated.safetensors", "model-00001-of-00002.safetensors",
                             "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                             "pytorch_model.bin"};
    const char *idx = "{\"metadata\":{},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                      "\"b\":\"model-00002-of-00002.safetensors\",\"c\":\"model-00001-of-00002.safetensors\"}}";
    CHECK(pick(mistral, 6, idx, got, sizeof got) == 0);
    CHECK_MSG(!strcmp(got, "model-00001-of-00002.safetensors,model-00002-of-00002.safetensors"), "%s", got);
    CHECK(pick(mistral, 6, "{\"weight_map\":{\"a\":\"missing.safetensors\"}}", got, sizeof got) == VC_EFORMAT);
    CHECK(strstr(vc_errmsg(), "missing.safetensors"));
    CHECK(pick(mistral, 6, "{\"weight_map\":{\"a\":\"../x.safetensors\"}}", got, sizeof got) == VC_EFORMAT);
    CHECK(pick(mistral, 6, "[1]", got, sizeof got) == VC_EFORMAT);
    const char *single[] = {"config.json", "model.safetensors", "consolidated.safetensors", "onnx/model.onnx"};
    CHECK(pick(single, 4, NULL, got, sizeof got) == 0 && !strcmp(got, "model.safetensors"));
    const char *other[] = {"config.json", "weights.safetensors", "sub/extra.safetensors", "model.bin"};
    CHECK(pick(other, 4, NULL, got, sizeof got) == 0 && !strcmp(got, "weights.safetensors"));
    const char *none[] = {"config.json", "pytorch_model.bin", "model.gguf", "model.onnx"};
    CHECK(pick(none, 4, NULL, got, sizeof got) == VC_EUNSUP);
    CHECK(strstr(vc_errmsg(), "no safetensors weights in o/r"));
    CHECK(hub_wanted_config("tokenizer.json") && hub_wanted_config("chat_template.jinja") &&
          hub_wanted_config("tokenizer.model") && hub_wanted_config("generation_config.json") &&
          hub_wanted_config("adapter_config.json"));
    CHECK(!hub_wanted_config("README.md") && !hub_wanted_config("sub/config.json") &&
          !hub_wanted_config("pytorch_model.bin") && !hub_wanted_config("vocab.txt"));
}

static void test_parse_info(void) {
    char commit[41], **files;
    int n;
    const char *ok = "{\"sha\":\"0123456789abcdef0123456789abcdef01234567\",\"siblings\":[{\"rfilename\":\"config.json\"},"
                     "{\"rfilename\":\"../evil\"},{\"rfilename\":7},{\"x\":1},{\"rfilename\":\"sub/a.safetensors\"}]}";
    CHECK(hub_parse_info(ok, strlen(ok), "u", commit, &files, &n) == 0);
    CHECK(!strcmp(commit, "0123456789abcdef0123456789abcdef01234567"));
    CHECK(n == 2 && !strcmp(files[0], "config.json") && !strcmp(files[1], "sub/a.safetensors"));
    hub_free_strs(files, n);
    const char *bad[] = {"", "[]", "{\"sha\":\"main\",\"siblings\":[]}", "{\"sha\":\"0123456789abcdef0123456789abcdef01234567\"}",
                         "{\"sha\":\"../../../../0123456789abcdef0123456789abcd\",\"siblings\":[]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_MSG(hub_parse_info(bad[i], strlen(bad[i]), "URL", commit, &files, &n) == VC_EFORMAT, "%s", bad[i]);
        CHECK(strstr(vc_errmsg(), "URL") && files == NULL && n == 0);
    }
}

static void test_formats(void) {
    char b[32];
    struct {
        double n;
        const char *want;
    } sizes[] = {{0, "0.00"}, {5, "5.00"}, {81, "81.0"}, {829, "829"}, {999.4, "999"}, {1000, "0.98k"},
                 {4640, "4.53k"}, {385120, "376k"}, {12.3 * 1048576, "12.3M"}, {548e6, "523M"},
                 {5.0 * 1073741824, "5.00G"}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        hub_fmt_size(sizes[i].n, b, sizeof b);
        CHECK_MSG(!strcmp(b, sizes[i].want), "%g -> '%s', want '%s'", sizes[i].n, b, sizes[i].want);
    }
    hub_fmt_time(2.7, b, sizeof b);
    CHECK(!strcmp(b, "00:02"));
    hub_fmt_time(3723, b, sizeof b);
    CHECK(!strcmp(b, "1:02:03"));
    hub_fmt_time(-1, b, sizeof b);
    CHECK(!strcmp(b, "00:00"));
}

static void test_resolve_local(void) {
    char *out = NULL;
    CHECK(hub_resolve("tests/golden", NULL, &out) == 0 && out && !strcmp(out, "tests/golden"));
    free(out);
    CHECK(hub_resolve("Makefile", NULL, &out) == VC_EINVAL && !out);
    CHECK(strstr(vc_errmsg(), "not a model directory"));
    CHECK(hub_resolve("/no/such/dir", NULL, &out) == VC_EINVAL && !out);
    CHECK(strstr(vc_errmsg(), "no such model directory: /no/such/dir"));
    hub_opts o = {"../../x", NULL, 0};
    CHECK(hub_resolve("org/name", &o, &out) == VC_EINVAL && strstr(vc_errmsg(), "--revision"));
}

int main(void) {
    test_repo_ids();
    test_paths();
    test_etag_quote();
    test_cache_dir();
    test_weight_files();
    test_parse_info();
    test_formats();
    test_resolve_local();
    TEST_END();
}
