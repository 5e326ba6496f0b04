/* test_tokenizer: each tokenizer.json component on small hand-written files.
 * Expected values follow Rust `tokenizers` (many are its own unit tests:
 * normalizer.rs split behaviors, metaspace.rs, digits.rs, punctuation.rs,
 * whitespace.rs, added_vocabulary.rs, byte_fallback.rs). */
#include "test_tokenizer_util.h"

static const char *const no_pieces[] = {NULL};

static void test_normalizers(void) {
    tok_tokenizer *t = mk_tok("{\"type\":\"NFC\"}", NULL, NULL, NULL, NULL, no_pieces);
    CHECK_STR(toks(t, "e\xCC\x81", 0), "\xC3\xA9"); /* e + U+0301 -> é */
    CHECK_STR(toks(t, "ab", 0), "a|b");
    tok_free(t);
    t = mk_tok("{\"type\":\"NFD\"}", NULL, NULL, NULL, NULL, no_pieces);
    CHECK_STR(toks(t, "\xC3\xA9", 0), "e|\xCC\x81");
    tok_free(t);
    t = mk_tok("{\"type\":\"NFKC\"}", NULL, NULL, NULL, NULL, no_pieces);
    CHECK_STR(toks(t, "\xEF\xAC\x81 \xC2\xB2", 0), "f|i| |2"); /* ﬁ ² */
    tok_free(t);
    t = mk_tok("{\"type\":\"Lowercase\"}", NULL, NULL, NULL, NULL, no_pieces);
    /* Rust char::to_lowercase: İ -> i + U+0307, Σ -> σ (no final-sigma rule) */
    CHECK_STR(toks(t, "AB\xC4\xB0\xCE\xA3", 0), "a|b|i|\xCC\x87|\xCF\x83");
    tok_free(t);
    t = mk_tok("{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":false}", NULL, NULL, NULL, NULL, no_pieces);
    CHECK_STR(toks(t, " \t a b ", 0), "a| |b| ");
    tok_free(t);
    t = mk_tok("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
               "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]}",
               NULL, NULL, NULL, NULL, no_pieces);
    CHECK_STR(toks(t, "a b", 0), "\xE2\x96\x81|a|\xE2\x96\x81|b");
    CHECK_STR(toks(t, "", 0), ""); /* Prepend only prepends to non-empty text */
    tok_free(t);
    t = mk_tok("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\"_\"}", NULL, NULL, NULL, NULL,
               no_pieces);
    CHECK_STR(toks(t, "a \t\xC2\x85 b", 0), "a|_|b"); /* \s is Unicode White_Space (has U+0085) */
    tok_free(t);
    t = mk_tok("{\"type\":\"StripAccents\"}", NULL, NULL, NULL, NULL, no_pieces);
    CHECK_STR(toks(t, "e\xCC\x81x", 0), "e|x");
    tok_free(t);
}

/* The behaviours of NormalizedString::split on "The-final--countdown". */
static void test_split_behaviors(void) {
    static const char *const pieces[] = {"The",   "final", "countdown", "The-", "final-",    "-final",
                                         "-countdown", "--", "The-final", NULL};
    static const struct {
        const char *behavior;
        int invert;
        const char *want;
    } cases[] = {
        {"Removed", 0, "The|final|countdown"},
        {"Isolated", 0, "The|-|final|-|-|countdown"},
        {"MergedWithPrevious", 0, "The-|final-|-|countdown"},
        {"MergedWithNext", 0, "The|-final|-|-countdown"},
        {"Contiguous", 0, "The|-|final|--|countdown"},
        {"Removed", 1, "-|-|-"},
        {"Isolated", 1, "The|-|final|-|-|countdown"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int regex = 0; regex < 2; regex++) {
            char pre[256];
            snprintf(pre, sizeof pre, "{\"type\":\"Split\",\"pattern\":{\"%s\":\"-\"},\"behavior\":\"%s\",\"invert\":%s}",
                     regex ? "Regex" : "String", cases[i].behavior, cases[i].invert ? "true" : "false");
            tok_tokenizer *t = mk_tok(NULL, pre, NULL, NULL, NULL, pieces);
            CHECK(t != NULL);
            if (!t) continue;
            const char *got = toks(t, "The-final--countdown", 0);
            CHECK_MSG(strcmp(got, cases[i].want) == 0, "%s invert=%d regex=%d: got %s want %s", cases[i].behavior,
                      cases[i].invert, regex, got, cases[i].want);
            tok_free(t);
        }
    }
    /* the llama-3 pattern through PCRE2: contractions are case-insensitive, \p{N}{1,3} */
    static const char *const p3[] = {"'S", "'s", " world", "123", "4", "Hello", "!!", NULL};
    tok_tokenizer *t = mk_tok(NULL,
                              "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n"
                              "\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*"
                              "[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false}",
                              NULL, NULL, NULL, p3);
    CHECK_STR(toks(t, "Hello's world!! 1234", 0), "Hello|'s| world|!!| |123|4");
    CHECK_STR(toks(t, "Hello'S", 0), "Hello|'S");
    tok_free(t);
}

static void test_pretokenizers(void) {
    /* Metaspace (metaspace.rs tests) */
    static const char *const mp[] = {"\xE2\x96\x81Hey", "\xE2\x96\x81" "friend!", "\xE2\x96\x81Hey\xE2\x96\x81",
                                     "<s>", "how", "\xE2\x96\x81Hey\xE2\x96\x81my\xE2\x96\x81" "friend\xE2\x96\x81",
                                     "how\xE2\x96\x81" "are\xE2\x96\x81you", NULL};
    const char *added = "{\"id\":200,\"content\":\"<s>\",\"special\":true,\"normalized\":false}";
    tok_tokenizer *t = mk_tok(NULL, "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"always\",\"split\":true}",
                              NULL, NULL, added, mp);
    CHECK_STR(toks(t, "Hey friend!", 0), "\xE2\x96\x81Hey|\xE2\x96\x81" "friend!");
    CHECK_STR(toks(t, "Hey   friend!", 0), "\xE2\x96\x81Hey|\xE2\x96\x81|\xE2\x96\x81|\xE2\x96\x81" "friend!");
    tok_free(t);
    t = mk_tok(NULL, "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"first\",\"split\":false}",
               NULL, NULL, added, mp);
    CHECK_STR(toks(t, "Hey my friend <s>how\xE2\x96\x81" "are you", 0),
              "\xE2\x96\x81Hey\xE2\x96\x81my\xE2\x96\x81" "friend\xE2\x96\x81|<s>|how\xE2\x96\x81" "are\xE2\x96\x81you");
    CHECK_STR(toks(t, " Hey <s>how", 0), "\xE2\x96\x81Hey\xE2\x96\x81|<s>|how");
    tok_free(t);
    t = mk_tok(NULL, "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"never\",\"split\":true}",
               NULL, NULL, added, mp);
    CHECK_STR(toks(t, "how", 0), "how");
    tok_free(t);

    /* Digits (digits.rs) */
    static const char *const dp[] = {"Hey ", " friend!", "123", NULL};
    t = mk_tok(NULL, "{\"type\":\"Digits\",\"individual_digits\":false}", NULL, NULL, NULL, dp);
    CHECK_STR(toks(t, "Hey 123 friend!", 0), "Hey |123| friend!");
    tok_free(t);
    t = mk_tok(NULL, "{\"type\":\"Digits\",\"individual_digits\":true}", NULL, NULL, NULL, dp);
    CHECK_STR(toks(t, "Hey 123 friend!", 0), "Hey |1|2|3| friend!");
    tok_free(t);

    /* Punctuation (punctuation.rs) */
    static const char *const pp[] = {"Hey friend", "     How are you", NULL};
    t = mk_tok(NULL, "{\"type\":\"Punctuation\",\"behavior\":\"Isolated\"}", NULL, NULL, NULL, pp);
    CHECK_STR(toks(t, "Hey friend!     How are you?!?", 0), "Hey friend|!|     How are you|?|!|?");
    tok_free(t);

    /* Whitespace / WhitespaceSplit (whitespace.rs) */
    static const char *const wp[] = {"Hey", "man", "man!", "Hey,", NULL};
    t = mk_tok(NULL, "{\"type\":\"Whitespace\"}", NULL, NULL, NULL, wp);
    CHECK_STR(toks(t, "Hey man!", 0), "Hey|man|!");
    CHECK_STR(toks(t, "\n", 0), "");
    tok_free(t);
    t = mk_tok(NULL, "{\"type\":\"WhitespaceSplit\"}", NULL, NULL, NULL, wp);
    CHECK_STR(toks(t, "Hey man!", 0), "Hey|man!");
    CHECK_STR(toks(t, "Hey,\xE3\x80\x80man", 0), "Hey,|man"); /* U+3000 is whitespace */
    tok_free(t);

    /* ByteLevel (byte_level.rs): GPT-2 regex, add_prefix_space, byte alphabet */
    static const char *const bp[] = {"\xC4\xA0Hello", "\xC4\xA0my", "\xC4\xA0" "friend", "\xC4\xA0how", "Hello",
                                     "\xC4\xA0\xC4\xA0", "\xC4\xA0\xC4\x8A\xC4\x8A", "\xC3\x83\xC2\xA9", NULL};
    t = mk_tok(NULL, "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}", NULL, NULL, NULL, bp);
    CHECK_STR(toks(t, "Hello my friend, how", 0), "\xC4\xA0Hello|\xC4\xA0my|\xC4\xA0" "friend|,|\xC4\xA0how");
    CHECK_STR(toks(t, "  Hello", 0), "\xC4\xA0|\xC4\xA0Hello"); /* starts with a space: none added; \s+(?!\S) */
    CHECK_STR(toks(t, "\n\n", 0), "\xC4\xA0\xC4\x8A\xC4\x8A"); /* prefix space, then one \s+ run */
    tok_free(t);
    t = mk_tok(NULL, "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}", NULL, NULL, NULL, bp);
    CHECK_STR(toks(t, "Hello", 0), "Hello");
    CHECK_STR(toks(t, "a b", 0), "a|\xC4\xA0|b");
    CHECK_STR(toks(t, "\xC3\xA9", 0), "\xC3\x83\xC2\xA9"); /* é = C3 A9 -> "Ã©" */
    tok_free(t);

    /* CharDelimiterSplit and a Sequence */
    t = mk_tok(NULL, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"CharDelimiterSplit\",\"delimiter\":\"x\"},"
                     "{\"type\":\"Digits\",\"individual_digits\":true}]}",
               NULL, NULL, NULL, no_pieces);
    CHECK_STR(toks(t, "a12xxb", 0), "a|1|2|b");
    tok_free(t);
}

/* added_vocabulary.rs options_use_cases / test_single_word_is_correct */
static void test_added_tokens(void) {
    static const char *const pieces[] = {"my", "name", "ony", " is anthony ", NULL};
    const char *added = "{\"id\":300,\"content\":\"my\",\"lstrip\":true,\"rstrip\":true,\"special\":false},"
                        "{\"id\":301,\"content\":\"name\",\"special\":false},"
                        "{\"id\":302,\"content\":\"ony\",\"single_word\":true,\"special\":false},"
                        "{\"id\":303,\"content\":\"[CLS]\",\"special\":true},"
                        "{\"id\":304,\"content\":\"[SEP]\",\"special\":true}";
    tok_tokenizer *t = mk_tok("{\"type\":\"Lowercase\"}", NULL, NULL, NULL, added, pieces);
    /* "my", "name", "ony" are in the vocabulary and keep its ids; [CLS]/[SEP] are new */
    CHECK_STR(toks(t, "[CLS] My name is Anthony [SEP]", 0), "[CLS]|my|name| is anthony |[SEP]");
    CHECK(tok_is_special(t, tok_token_to_id(t, "[CLS]", 5)));
    CHECK(!tok_is_special(t, tok_token_to_id(t, "name", 4)) && tok_is_added(t, tok_token_to_id(t, "name", 4)));
    tok_free(t);

    static const char *const mp[] = {"<mask>", NULL};
    t = mk_tok("{\"type\":\"Lowercase\"}", NULL, NULL, NULL,
               "{\"id\":0,\"content\":\"<mask>\",\"single_word\":true,\"special\":false}", mp);
    CHECK_STR(toks(t, "<mask> My name <mask> A<mask> <mask>ony <mask>", 0),
              "<mask>| |m|y| |n|a|m|e| |<mask>| |a|<|m|a|s|k|>| |<|m|a|s|k|>|o|n|y| |<mask>");
    tok_free(t);

    /* lstrip/rstrip take Unicode whitespace; a match after rstrip starts after it */
    t = mk_tok(NULL, NULL, NULL, NULL,
               "{\"id\":0,\"content\":\"<mask>\",\"lstrip\":true,\"rstrip\":true,\"single_word\":true,\"special\":true}",
               mp);
    CHECK_STR(toks(t, "Hi <mask> there\t<mask>\t<mask>\xE2\x80\x80", 0), "H|i|<mask>|t|h|e|r|e|<mask>|<mask>");
    tok_free(t);

    /* leftmost-longest; special tokens are not normalized; normalized ones match normalized text */
    t = mk_tok("{\"type\":\"Lowercase\"}", NULL, NULL, NULL,
               "{\"id\":0,\"content\":\"<|a|>\",\"special\":true},{\"id\":1,\"content\":\"<|a|>x\",\"special\":true},"
               "{\"id\":2,\"content\":\"Foo\",\"special\":false,\"normalized\":true}",
               no_pieces);
    /* (the separator '|' is also a character here: " <|A|> " -> " ", "<", "|", "a", "|", ">", " ") */
    CHECK_STR(toks(t, "<|a|>x<|a|>y <|A|> FOO foo", 0), "<|a|>x|<|a|>|y| |<|||a|||>| |Foo| |Foo");
    tok_free(t);

    /* ids: a new content gets vocab_size, then max + 1 (the file's ids are not trusted) */
    t = mk_tok(NULL, NULL, NULL, NULL,
               "{\"id\":7,\"content\":\"<x>\",\"special\":true},{\"id\":9,\"content\":\"<y>\",\"special\":true},"
               "{\"id\":9,\"content\":\"<y>\",\"special\":true},{\"id\":1,\"content\":\"\",\"special\":true}",
               no_pieces);
    CHECK(tok_token_to_id(t, "<x>", 3) == base_ids());
    CHECK(tok_token_to_id(t, "<y>", 3) == base_ids() + 1);
    CHECK(tok_vocab_size(t) == (size_t)base_ids() + 2);
    tok_free(t);
}

static tok_tokenizer *bpe(const char *model_extra, const char *vocab, const char *merges) {
    tbuf b = {0};
    tb_fmt(&b, "{\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":null,"
               "\"model\":{\"type\":\"BPE\"%s,\"vocab\":{%s},\"merges\":[%s]}}",
           model_extra, vocab, merges);
    tok_tokenizer *t = load_json(b.s, NULL);
    free(b.s);
    return t;
}

static void test_bpe(void) {
    const char *v = "\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4,\"abc\":5";
    tok_tokenizer *t = bpe("", v, "\"a b\",\"b c\",\"ab c\"");
    CHECK_STR(idstr(t, "abc", 0), "5");
    CHECK_STR(idstr(t, "abcab", 0), "5 3");
    tok_free(t);
    t = bpe("", v, "[\"b\",\"c\"],[\"a\",\"b\"]"); /* pair form; b c has the lower rank */
    CHECK_STR(idstr(t, "abc", 0), "0 4");
    CHECK_STR(idstr(t, "abab", 0), "3 3");
    tok_free(t);
    /* equal ranks: leftmost first ("aaa" -> "aa" "a") */
    t = bpe("", "\"a\":0,\"aa\":1", "\"a a\"");
    CHECK_STR(idstr(t, "aaa", 0), "1 0");
    CHECK_STR(idstr(t, "aaaaa", 0), "1 1 0");
    tok_free(t);
    /* ignore_merges: a word in the vocabulary is taken whole even if merges would not build it */
    t = bpe(",\"ignore_merges\":true", "\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4", "\"a b\"");
    CHECK_STR(idstr(t, "abc", 0), "4");
    tok_free(t);
    t = bpe(",\"ignore_merges\":false", "\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"abc\":4", "\"a b\"");
    CHECK_STR(idstr(t, "abc", 0), "3 2");
    tok_free(t);
    /* unk: fused or not; byte fallback (all bytes or unk) */
    t = bpe(",\"unk_token\":\"<unk>\",\"fuse_unk\":true", "\"<unk>\":0,\"a\":1", "");
    CHECK_STR(idstr(t, "xxaxy", 0), "0 1 0");
    tok_free(t);
    t = bpe(",\"unk_token\":\"<unk>\",\"fuse_unk\":false", "\"<unk>\":0,\"a\":1", "");
    CHECK_STR(idstr(t, "xxa", 0), "0 0 1");
    tok_free(t);
    t = bpe(",\"unk_token\":\"<unk>\",\"byte_fallback\":true",
            "\"<unk>\":0,\"a\":1,\"<0x63>\":2,\"<0xC3>\":3,\"<0xA9>\":4", "");
    CHECK_STR(idstr(t, "ac\xC3\xA9", 0), "1 2 3 4");
    CHECK_STR(idstr(t, "\xC3\xA8", 0), "0"); /* <0xA8> missing: unk */
    tok_free(t);
    /* continuing_subword_prefix / end_of_word_suffix */
    t = bpe(",\"continuing_subword_prefix\":\"##\",\"end_of_word_suffix\":\"</w>\"",
            "\"a\":0,\"##b\":1,\"##c</w>\":2,\"ab\":3,\"abc</w>\":4", "\"a ##b\",\"ab ##c</w>\"");
    CHECK_STR(idstr(t, "abc", 0), "4");
    tok_free(t);
    /* a merge whose parts are missing is a load error naming the file */
    t = NULL;
    const char *bad = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a q\"]}}";
    CHECK(tok_load_mem(bad, strlen(bad), "bad/tokenizer.json", NULL, 0, &t) == VC_EFORMAT);
    CHECK(strstr(vc_errmsg(), "bad/tokenizer.json") && strstr(vc_errmsg(), "'q'"));
    /* long words: the heap loop (and the U+2581 cuts) give the same ids as short ones */
    t = bpe("", "\"a\":0,\"aa\":1,\"aaaa\":2", "\"a a\",\"aa aa\"");
    char *w = malloc(100001);
    memset(w, 'a', 100000);
    w[100000] = 0;
    tok_ids ids = {0};
    CHECK(tok_encode(t, w, 100000, 0, &ids) == 0 && ids.n == 25000);
    tok_ids_free(&ids);
    free(w);
    tok_free(t);
}

static void test_post_processors(void) {
    const char *tmpl = "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
                       "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],"
                       "\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]},"
                       "\"</s>\":{\"id\":\"</s>\",\"ids\":[2,3],\"tokens\":[\"</s>\",\"x\"]}}}";
    tok_tokenizer *t = mk_tok(NULL, NULL, tmpl, NULL, NULL, no_pieces);
    CHECK_STR(idstr(t, "a", 1), "1 65 2 3");
    CHECK_STR(idstr(t, "a", 0), "65");
    CHECK_STR(idstr(t, "", 1), "1 2 3");
    tok_free(t);
    char seq[1024];
    snprintf(seq, sizeof seq, "{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\",\"add_prefix_space\":true},%s]}",
             tmpl);
    t = mk_tok(NULL, NULL, seq, NULL, NULL, no_pieces);
    CHECK_STR(idstr(t, "a", 1), "1 65 2 3");
    tok_free(t);
    t = mk_tok(NULL, NULL, "{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",0],\"trim_offsets\":true}",
               NULL, NULL, no_pieces);
    CHECK_STR(idstr(t, "a", 1), "0 65 2");
    tok_free(t);
}

static void test_decoders(void) {
    static const char *const bf[] = {"<0xE5>", "<0x8F>", "<0xAB>", "<0x61>", "<0x8f>", "\xE2\x96\x81Hey",
                                     "\xE2\x96\x81" "friend", "<s>", NULL};
    const char *added = "{\"id\":500,\"content\":\"<s>\",\"special\":true}";
    /* ByteFallback (byte_fallback.rs), with the llama-2 decoder sequence */
    tok_tokenizer *t = mk_tok(NULL, NULL, NULL,
                              "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xE2\x96\x81\"},"
                              "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                              "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}",
                              added, bf);
    CHECK_STR(dec_toks(t, "<0x61>", 0), "a");
    CHECK_STR(dec_toks(t, "<0xE5>", 0), "\xEF\xBF\xBD");
    CHECK_STR(dec_toks(t, "<0xE5>|<0x8f>", 0), "\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK_STR(dec_toks(t, "<0xE5>|<0x8F>|<0xAB>", 0), "\xE5\x8F\xAB");
    CHECK_STR(dec_toks(t, "<0xE5>|<0x8F>|<0xAB>|a", 0), "\xE5\x8F\xAB" "a");
    CHECK_STR(dec_toks(t, "<0xE5>|<0x8F>|a", 0), "\xEF\xBF\xBD\xEF\xBF\xBD" "a");
    CHECK_STR(dec_toks(t, "<0x61>|<0x8F>", 0), "\xEF\xBF\xBD\xEF\xBF\xBD"); /* one U+FFFD per byte of a bad run */
    CHECK_STR(dec_toks(t, "\xE2\x96\x81Hey|\xE2\x96\x81" "friend", 0), "Hey friend");
    CHECK_STR(dec_toks(t, "<s>|\xE2\x96\x81Hey", 0), "<s> Hey");
    CHECK_STR(dec_toks(t, "<s>|\xE2\x96\x81Hey", TOK_DECODE_SKIP_SPECIAL), "Hey");
    tok_free(t);

    /* Metaspace decoder: every replacement char of the first token goes (Rust) */
    static const char *const mp[] = {"\xE2\x96\x81\xE2\x96\x81Hey", "\xE2\x96\x81" "friend", NULL};
    t = mk_tok(NULL, NULL, NULL, "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"always\"}",
               NULL, mp);
    CHECK_STR(dec_toks(t, "\xE2\x96\x81\xE2\x96\x81Hey|\xE2\x96\x81" "friend", 0), "Hey friend");
    tok_free(t);
    t = mk_tok(NULL, NULL, NULL, "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"never\"}",
               NULL, mp);
    CHECK_STR(dec_toks(t, "\xE2\x96\x81\xE2\x96\x81Hey|\xE2\x96\x81" "friend", 0), "  Hey friend");
    tok_free(t);

    /* ByteLevel: chars -> bytes, invalid UTF-8 -> U+FFFD per maximal subpart; no decoder: join with ' ' */
    /* bytes E6 97 A5 (日) are the byte-level chars æ (U+00E6), Ĺ (U+0139), ¥ (U+00A5) */
    static const char *const bl[] = {"\xC4\xA0Hello", "\xC3\xA6", "\xC4\xB9", "\xC2\xA5", "\xC2\x97", NULL};
    t = mk_tok(NULL, NULL, NULL, "{\"type\":\"ByteLevel\"}", added, bl);
    CHECK_STR(dec_toks(t, "\xC4\xA0Hello|\xC3\xA6|\xC4\xB9|\xC2\xA5", 0), " Hello\xE6\x97\xA5"); /* 日 from 3 tokens */
    CHECK_STR(dec_toks(t, "\xC3\xA6|\xC4\xB9", 0), "\xEF\xBF\xBD"); /* incomplete at the end: one U+FFFD */
    /* U+0097 is outside the byte alphabet: the token contributes its own UTF-8 */
    CHECK_STR(dec_toks(t, "\xC2\x97|a", 0), "\xC2\x97" "a");
    CHECK_STR(dec_toks(t, "\xC3\xA6|<s>|\xC4\xB9", 0), "\xEF\xBF\xBD<s>\xEF\xBF\xBD");
    tok_free(t);
    t = mk_tok(NULL, NULL, NULL, NULL, NULL, bl);
    CHECK_STR(dec_toks(t, "a|b|c", 0), "a b c");
    tok_free(t);

    /* Strip stop, and Replace after Fuse (matches across token boundaries) */
    static const char *const sp[] = {"ab", "__", "x_", "_y", NULL};
    t = mk_tok(NULL, NULL, NULL,
               "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\"__\"},"
               "\"content\":\"-\"},{\"type\":\"Strip\",\"content\":\"_\",\"start\":2,\"stop\":2}]}",
               NULL, sp);
    CHECK_STR(dec_toks(t, "x_|_y", 0), "x-y");
    CHECK_STR(dec_toks(t, "_|a|_|_|_|_|_", 0), "a--"); /* "_a_____" -> "_a--_" -> strip 1 leading, 1 trailing */
    tok_free(t);
}

static void test_config(void) {
    static const char *const pieces[] = {"<s>", "</s>", NULL};
    char *j = mk_json(NULL, NULL, NULL, NULL,
                      "{\"id\":95,\"content\":\"<s>\",\"special\":true},{\"id\":96,\"content\":\"</s>\",\"special\":true}",
                      pieces);
    /* a Llama-style config rebuilds the post-processor from add_bos/add_eos */
    tok_tokenizer *t = load_json(j, "{\"tokenizer_class\":\"LlamaTokenizer\",\"add_bos_token\":true,\"add_eos_token\":true,"
                                    "\"bos_token\":{\"__type\":\"AddedToken\",\"content\":\"<s>\"},\"eos_token\":\"</s>\","
                                    "\"model_max_length\":1e30,\"chat_template\":\"{{ bos_token }}\","
                                    "\"clean_up_tokenization_spaces\":true}");
    CHECK(t != NULL);
    if (t) {
        char want[64];
        snprintf(want, sizeof want, "%d 65 %d", base_ids(), base_ids() + 1); /* <s>, </s> follow the base ids */
        CHECK_STR(idstr(t, "a", 1), want);
        CHECK_STR(tok_bos_token(t), "<s>");
        CHECK(tok_bos_id(t) == base_ids() && tok_eos_id(t) == base_ids() + 1);
        CHECK(tok_model_max_length(t) == -1);
        CHECK(tok_chat_template_count(t) == 1 && strcmp(tok_chat_template(t, NULL), "{{ bos_token }}") == 0);
        CHECK_STR(tok_config_string(t, "tokenizer_class"), "LlamaTokenizer");
        CHECK(tok_clean_up_spaces(t) == 1 && tok_add_bos_token(t) == 1);
        tok_free(t);
    }
    /* other classes: used only without a post_processor; named chat templates */
    t = load_json(j, "{\"add_bos_token\":true,\"bos_token\":\"<s>\",\"model_max_length\":4096,"
                     "\"chat_template\":[{\"name\":\"default\",\"template\":\"D\"},{\"name\":\"tool_use\",\"template\":\"T\"}],"
                     "\"added_tokens_decoder\":{\"300\":{\"content\":\"<new>\",\"special\":true}},"
                     "\"additional_special_tokens\":[\"<extra>\"]}");
    CHECK(t != NULL);
    if (t) {
        char want[64];
        snprintf(want, sizeof want, "%d 65", base_ids());
        CHECK_STR(idstr(t, "a", 1), want);
        CHECK(tok_model_max_length(t) == 4096);
        CHECK(tok_chat_template_count(t) == 2);
        CHECK_STR(tok_chat_template(t, NULL), "D");
        CHECK_STR(tok_chat_template(t, "tool_use"), "T");
        CHECK_STR(tok_chat_template_name(t, 1), "tool_use");
        int32_t nw = tok_token_to_id(t, "<new>", 5), ex = tok_token_to_id(t, "<extra>", 7);
        CHECK(nw >= 0 && tok_is_special(t, nw) && ex >= 0 && tok_is_special(t, ex));
        CHECK_STR(toks(t, "x<new>y<extra>", 0), "x|<new>|y|<extra>");
        tok_free(t);
    }
    free(j);
}

static void test_errors(void) {
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "unsupported model type 'WordPiece'"},
        {"{\"normalizer\":{\"type\":\"BertNormalizer\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "unsupported normalizer type 'BertNormalizer'"},
        {"{\"pre_tokenizer\":{\"type\":\"UnicodeScripts\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "unsupported pre_tokenizer type 'UnicodeScripts'"},
        {"{\"decoder\":{\"type\":\"WordPiece\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "unsupported decoder type 'WordPiece'"},
        {"{\"post_processor\":{\"type\":\"Foo\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "unsupported post_processor type 'Foo'"},
        {"{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
         "regex ( is not supported"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}", "model.vocab['a']"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a a\"]}}", "merge #0"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]},}", "invalid JSON at line 1"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\\ud800\":0}}}", "lone high surrogate"},
        {"[]", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tok_tokenizer *t = NULL;
        int rc = tok_load_mem(cases[i].json, strlen(cases[i].json), "dir/tokenizer.json", NULL, 0, &t);
        CHECK_MSG(rc < 0 && !t, "case %zu loaded", i);
        CHECK_MSG(strstr(vc_errmsg(), cases[i].want) && strstr(vc_errmsg(), "dir/tokenizer.json"),
                  "case %zu: message '%s' lacks '%s'", i, vc_errmsg(), cases[i].want);
    }
    /* config errors name the config file */
    char *j = mk_json(NULL, NULL, NULL, NULL, NULL, no_pieces);
    tok_tokenizer *t = NULL;
    CHECK(tok_load_mem(j, strlen(j), "dir/tokenizer.json", "{\"chat_template\":5}", 19, &t) == VC_EFORMAT);
    CHECK(strstr(vc_errmsg(), "dir/tokenizer_config.json"));
    CHECK(tok_load_mem(j, strlen(j), "dir/tokenizer.json", "{\"tokenizer_class\":\"LlamaTokenizer\"}", 36, &t) ==
          VC_EFORMAT); /* add_bos defaults on, but there is no bos_token */
    /* invalid UTF-8 input */
    t = load_json(j, NULL);
    tok_ids ids = {0};
    CHECK(tok_encode(t, "a\xC3", 2, 0, &ids) == VC_EINVAL && strstr(vc_errmsg(), "UTF-8"));
    CHECK(tok_encode(t, "a\xED\xA0\x80", 4, 0, &ids) == VC_EINVAL); /* surrogate */
    tok_ids_free(&ids);
    tok_free(t);
    free(j);
    CHECK(tok_load_dir("/nonexistent-dir", &t) < 0 && strstr(vc_errmsg(), "/nonexistent-dir/tokenizer.json"));
}

int main(void) {
    test_normalizers();
    test_split_behaviors();
    test_pretokenizers();
    test_added_tokens();
    test_bpe();
    test_post_processors();
    test_decoders();
    test_config();
    test_errors();
    TEST_END();
}
