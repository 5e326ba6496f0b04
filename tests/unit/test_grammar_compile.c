/* grammar compile: the text front ends (compile.h) checked through the matcher. The regex table's
 * expected column comes from JavaScript: new RegExp('^(?:' + p + ')$', 'u').test(s) under node 20
 * ((?P<n> written (?<n> for node); the few places where compile.h chooses Python's meaning ('.'
 * matches \r, {,n}) have cases of their own. Then GBNF grammars (llama.cpp's syntax), choice lists,
 * every error with its message, and the limits: nesting (count and the thread's real stack) and
 * the element limit. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/fault.h"
#include "grammar/compile.h"
#include "test.h"

/* 1: s is a whole sentence of g; 0: it is not; checks that feeding byte by byte agrees. */
static int full_match(const gram_grammar *g, const char *s, size_t n) {
    gram_matcher *m = NULL;
    if (gram_matcher_new(g, &m)) {
        fprintf(stderr, "gram_matcher_new: %s\n", vc_errmsg());
        test_failures++;
        return -1;
    }
    int rc = gram_matcher_feed(m, s, n);
    CHECK(rc == 0 || rc == 1);
    int whole = rc == 0 && gram_matcher_accepting(m);
    gram_matcher_reset(m);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) ok = gram_matcher_feed(m, s + i, 1) == 0;
    int bytewise = ok && gram_matcher_accepting(m);
    CHECK_MSG(whole == bytewise, "whole %d, byte by byte %d for \"%.*s\"", whole, bytewise, (int)n, s);
    gram_matcher_free(m);
    return whole;
}

/* ---------------------------------------------------------------- regex vs JavaScript */

typedef struct {
    const char *re, *s;
    size_t n;
    int match;
} rx_case;

static const rx_case RX[] = {
    {"abc", "abc", 3, 1},
    {"abc", "ab", 2, 0},
    {"abc", "abcd", 4, 0},
    {"abc", "", 0, 0},
    {"abc", "abd", 3, 0},
    {"", "", 0, 1},
    {"", "a", 1, 0},
    {"a|b|c", "a", 1, 1},
    {"a|b|c", "b", 1, 1},
    {"a|b|c", "c", 1, 1},
    {"a|b|c", "d", 1, 0},
    {"a|b|c", "ab", 2, 0},
    {"a|b|c", "", 0, 0},
    {"ab|cd", "ab", 2, 1},
    {"ab|cd", "cd", 2, 1},
    {"ab|cd", "ad", 2, 0},
    {"ab|cd", "abcd", 4, 0},
    {"a*", "", 0, 1},
    {"a*", "a", 1, 1},
    {"a*", "aaaa", 4, 1},
    {"a*", "b", 1, 0},
    {"a*", "aab", 3, 0},
    {"a+", "", 0, 0},
    {"a+", "a", 1, 1},
    {"a+", "aaa", 3, 1},
    {"a+", "ab", 2, 0},
    {"a\077b", "b", 1, 1},
    {"a\077b", "ab", 2, 1},
    {"a\077b", "aab", 3, 0},
    {"a\077b", "a", 1, 0},
    {"a{3}", "aa", 2, 0},
    {"a{3}", "aaa", 3, 1},
    {"a{3}", "aaaa", 4, 0},
    {"a{2,}", "a", 1, 0},
    {"a{2,}", "aa", 2, 1},
    {"a{2,}", "aaaaaaa", 7, 1},
    {"a{2,4}", "a", 1, 0},
    {"a{2,4}", "aa", 2, 1},
    {"a{2,4}", "aaa", 3, 1},
    {"a{2,4}", "aaaa", 4, 1},
    {"a{2,4}", "aaaaa", 5, 0},
    {"a{0,2}b", "b", 1, 1},
    {"a{0,2}b", "ab", 2, 1},
    {"a{0,2}b", "aab", 3, 1},
    {"a{0,2}b", "aaab", 4, 0},
    {"a{0}b", "b", 1, 1},
    {"a{0}b", "ab", 2, 0},
    {"(ab)*", "", 0, 1},
    {"(ab)*", "ab", 2, 1},
    {"(ab)*", "abab", 4, 1},
    {"(ab)*", "aba", 3, 0},
    {"(ab)*", "ba", 2, 0},
    {"(ab)+c", "c", 1, 0},
    {"(ab)+c", "abc", 3, 1},
    {"(ab)+c", "ababc", 5, 1},
    {"(ab)+c", "abac", 4, 0},
    {"(\077:a|bc)+", "a", 1, 1},
    {"(\077:a|bc)+", "bc", 2, 1},
    {"(\077:a|bc)+", "abca", 4, 1},
    {"(\077:a|bc)+", "abcb", 4, 0},
    {"(\077:a|bc)+", "", 0, 0},
    {"(a|b)*c(d|e)\077", "c", 1, 1},
    {"(a|b)*c(d|e)\077", "abbac", 5, 1},
    {"(a|b)*c(d|e)\077", "abcd", 4, 1},
    {"(a|b)*c(d|e)\077", "ce", 2, 1},
    {"(a|b)*c(d|e)\077", "cde", 3, 0},
    {"(a|b)*c(d|e)\077", "ac", 2, 1},
    {"((a|b)(c|d)){2}", "acbd", 4, 1},
    {"((a|b)(c|d)){2}", "ac", 2, 0},
    {"((a|b)(c|d)){2}", "adbcac", 6, 0},
    {"((a|b)(c|d)){2}", "bdbd", 4, 1},
    {"(((a)))", "a", 1, 1},
    {"(((a)))", "aa", 2, 0},
    {"(((a)))", "", 0, 0},
    {"((a*)*)*", "", 0, 1},
    {"((a*)*)*", "aaa", 3, 1},
    {"((a*)*)*", "b", 1, 0},
    {"(a*)+b", "b", 1, 1},
    {"(a*)+b", "aab", 3, 1},
    {"(a*)+b", "aa", 2, 0},
    {"(a|ab)(c|bcd)(d*)", "abcd", 4, 1},
    {"(a|ab)(c|bcd)(d*)", "abcdd", 5, 1},
    {"(a|ab)(c|bcd)(d*)", "acd", 3, 1},
    {"(a|ab)(c|bcd)(d*)", "abc", 3, 1},
    {"x(\077:y(\077:z(\077:w)\077)\077)\077", "x", 1, 1},
    {"x(\077:y(\077:z(\077:w)\077)\077)\077", "xy", 2, 1},
    {"x(\077:y(\077:z(\077:w)\077)\077)\077", "xyz", 3, 1},
    {"x(\077:y(\077:z(\077:w)\077)\077)\077", "xyzw", 4, 1},
    {"x(\077:y(\077:z(\077:w)\077)\077)\077", "xz", 2, 0},
    {"a*\077b", "b", 1, 1},
    {"a*\077b", "aab", 3, 1},
    {"a*\077b", "a", 1, 0},
    {"a+\077", "a", 1, 1},
    {"a+\077", "aa", 2, 1},
    {"a+\077", "", 0, 0},
    {"a{2,3}\077", "aa", 2, 1},
    {"a{2,3}\077", "aaa", 3, 1},
    {"a{2,3}\077", "a", 1, 0},
    {"(\077<year>\\d{4})-(\077<m>\\d{2})", "2024-01", 7, 1},
    {"(\077<year>\\d{4})-(\077<m>\\d{2})", "202-01", 6, 0},
    {"(\077<year>\\d{4})-(\077<m>\\d{2})", "2024-1", 6, 0},
    {"(\077P<n>ab)c", "abc", 3, 1},
    {"(\077P<n>ab)c", "ab", 2, 0},
    {"[abc]", "a", 1, 1},
    {"[abc]", "b", 1, 1},
    {"[abc]", "c", 1, 1},
    {"[abc]", "d", 1, 0},
    {"[abc]", "ab", 2, 0},
    {"[a-z]+", "hello", 5, 1},
    {"[a-z]+", "Hello", 5, 0},
    {"[a-z]+", "", 0, 0},
    {"[a-z]+", "abc1", 4, 0},
    {"[^a-z]", "A", 1, 1},
    {"[^a-z]", "a", 1, 0},
    {"[^a-z]", "1", 1, 1},
    {"[^a-z]", "\303\251", 2, 1},
    {"[^a-z]", "\012", 1, 1},
    {"[a-zA-Z0-9_]+", "Az_09", 5, 1},
    {"[a-zA-Z0-9_]+", "a-b", 3, 0},
    {"[-a]", "-", 1, 1},
    {"[-a]", "a", 1, 1},
    {"[-a]", "b", 1, 0},
    {"[a-]", "-", 1, 1},
    {"[a-]", "a", 1, 1},
    {"[\\-.]+", "-.-", 3, 1},
    {"[\\-.]+", "a", 1, 0},
    {"[.]", ".", 1, 1},
    {"[.]", "a", 1, 0},
    {"[\\]]", "]", 1, 1},
    {"[\\]]", "\\", 1, 0},
    {"[\\\\]", "\\", 1, 1},
    {"[\\\\]", "a", 1, 0},
    {"[\\d]+", "123", 3, 1},
    {"[\\d]+", "12a", 3, 0},
    {"[\\w-]+", "ab-c_9", 6, 1},
    {"[\\w-]+", "a b", 3, 0},
    {"[^\\d]", "a", 1, 1},
    {"[^\\d]", "5", 1, 0},
    {"[^\\d]", "-", 1, 1},
    {"[\\D]", "a", 1, 1},
    {"[\\D]", "5", 1, 0},
    {"[^\\W]", "a", 1, 1},
    {"[^\\W]", "_", 1, 1},
    {"[^\\W]", "-", 1, 0},
    {"[\\s,]+", " ,\011", 3, 1},
    {"[\\s,]+", "a", 1, 0},
    {"[\\s,]+", "\302\240,", 3, 1},
    {"[^\\s]+", "abc", 3, 1},
    {"[^\\s]+", "a c", 3, 0},
    {"[^\\s]+", "\303\251", 2, 1},
    {"[\\S]", "a", 1, 1},
    {"[\\S]", " ", 1, 0},
    {"[]", "", 0, 0},
    {"[]", "a", 1, 0},
    {"[^]", "a", 1, 1},
    {"[^]", "\012", 1, 1},
    {"[^]", "\303\251", 2, 1},
    {"[^]", "", 0, 0},
    {"[\316\261-\317\211]+", "\316\261\316\262\316\263", 6, 1},
    {"[\316\261-\317\211]+", "abc", 3, 0},
    {"[\316\261-\317\211]+", "\317\211", 2, 1},
    {"[^\316\261-\317\211]", "\316\261", 2, 0},
    {"[^\316\261-\317\211]", "a", 1, 1},
    {"[^\316\261-\317\211]", "\360\237\230\200", 4, 1},
    {"[\360\237\230\200-\360\237\230\202]", "\360\237\230\200", 4, 1},
    {"[\360\237\230\200-\360\237\230\202]", "\360\237\230\201", 4, 1},
    {"[\360\237\230\200-\360\237\230\202]", "\360\237\230\202", 4, 1},
    {"[\360\237\230\200-\360\237\230\202]", "\360\237\230\203", 4, 0},
    {"[\\u0400-\\u04FF]+", "\320\237\321\200\320\270\320\262\320\265\321\202", 12, 1},
    {"[\\u0400-\\u04FF]+", "Hello", 5, 0},
    {"[\\u{1F600}-\\u{1F64F}]", "\360\237\230\200", 4, 1},
    {"[\\u{1F600}-\\u{1F64F}]", "\360\237\230\220", 4, 1},
    {"[\\u{1F600}-\\u{1F64F}]", "a", 1, 0},
    {"[a-c\\d\\s]*", "a1 c", 4, 1},
    {"[a-c\\d\\s]*", "a1 d", 4, 0},
    {"[\\x41-\\x43]", "A", 1, 1},
    {"[\\x41-\\x43]", "C", 1, 1},
    {"[\\x41-\\x43]", "D", 1, 0},
    {"[\\b]", "\010", 1, 1},
    {"[\\b]", "b", 1, 0},
    {"[\\t\\n]+", "\011\012", 2, 1},
    {"[\\t\\n]+", " ", 1, 0},
    {"\\d+", "0", 1, 1},
    {"\\d+", "1234567890", 10, 1},
    {"\\d+", "12a", 3, 0},
    {"\\d+", "", 0, 0},
    {"\\d+", "\331\243", 2, 0},
    {"\\D+", "abc", 3, 1},
    {"\\D+", "a1", 2, 0},
    {"\\w+", "foo_bar9", 8, 1},
    {"\\w+", "foo-bar", 7, 0},
    {"\\w+", "\303\251", 2, 0},
    {"\\W", "-", 1, 1},
    {"\\W", "a", 1, 0},
    {"\\W", "\303\251", 2, 1},
    {"\\W", " ", 1, 1},
    {"\\s", " ", 1, 1},
    {"\\s", "\011", 1, 1},
    {"\\s", "\012", 1, 1},
    {"\\s", "\015", 1, 1},
    {"\\s", "\013", 1, 1},
    {"\\s", "\014", 1, 1},
    {"\\s", "\302\240", 2, 1},
    {"\\s", "\357\273\277", 3, 1},
    {"\\s", "\342\200\250", 3, 1},
    {"\\s", "\342\200\251", 3, 1},
    {"\\s", "\341\232\200", 3, 1},
    {"\\s", "\342\200\200", 3, 1},
    {"\\s", "\342\200\212", 3, 1},
    {"\\s", "\342\200\213", 3, 0},
    {"\\s", "\342\200\257", 3, 1},
    {"\\s", "\342\201\237", 3, 1},
    {"\\s", "\343\200\200", 3, 1},
    {"\\s", "a", 1, 0},
    {"\\s", "\302\205", 2, 0},
    {"\\S", " ", 1, 0},
    {"\\S", "a", 1, 1},
    {"\\S", "\343\200\200", 3, 0},
    {"\\S", "\360\237\230\200", 4, 1},
    {".", "a", 1, 1},
    {".", "\303\251", 2, 1},
    {".", "\360\237\230\200", 4, 1},
    {".", "\012", 1, 0},
    {".", "", 0, 0},
    {".", "ab", 2, 0},
    {".", "\011", 1, 1},
    {".*", "", 0, 1},
    {".*", "anything at all", 15, 1},
    {".*", "two\012lines", 9, 0},
    {"a.c", "abc", 3, 1},
    {"a.c", "a.c", 3, 1},
    {"a.c", "a\303\251c", 4, 1},
    {"a.c", "ac", 2, 0},
    {"a.c", "a\012c", 3, 0},
    {"\\.", ".", 1, 1},
    {"\\.", "a", 1, 0},
    {"\\*\\+\\\077\\(\\)\\[\\]\\{\\}\\|\\^\\$\\/\\\\", "*+\077()[]{}|^$/\\", 14, 1},
    {"\\n\\t\\r\\f\\v", "\012\011\015\014\013", 5, 1},
    {"\\0", "\000", 1, 1},
    {"\\0", "0", 1, 0},
    {"\\x41\\x7a", "Az", 2, 1},
    {"\\x41\\x7a", "AZ", 2, 0},
    {"\\u00e9", "\303\251", 2, 1},
    {"\\u00e9", "e", 1, 0},
    {"\\u{1F600}", "\360\237\230\200", 4, 1},
    {"\\u{1F600}", "", 0, 0},
    {"\\uD83D\\uDE00", "\360\237\230\200", 4, 1},
    {"\\cJ", "\012", 1, 1},
    {"\\cJ", "J", 1, 0},
    {"\303\251+", "\303\251", 2, 1},
    {"\303\251+", "\303\251\303\251\303\251", 6, 1},
    {"\303\251+", "e", 1, 0},
    {"\346\227\245\346\234\254\350\252\236", "\346\227\245\346\234\254\350\252\236", 9, 1},
    {"\346\227\245\346\234\254\350\252\236", "\346\227\245\346\234\254", 6, 0},
    {"(\346\227\245|\346\234\254)+", "\346\227\245\346\234\254\346\227\245", 9, 1},
    {"(\346\227\245|\346\234\254)+", "\350\252\236", 3, 0},
    {"\360\237\230\200{2}", "\360\237\230\200\360\237\230\200", 8, 1},
    {"\360\237\230\200{2}", "\360\237\230\200", 4, 0},
    {"^abc$", "abc", 3, 1},
    {"^abc$", "abcd", 4, 0},
    {"^a|b$", "a", 1, 1},
    {"^a|b$", "b", 1, 1},
    {"^a|b$", "ab", 2, 0},
    {"^$", "", 0, 1},
    {"^$", "a", 1, 0},
    {"\\d{3}-\\d{4}", "555-1234", 8, 1},
    {"\\d{3}-\\d{4}", "55-1234", 7, 0},
    {"\\d{3}-\\d{4}", "5555-1234", 9, 0},
    {"[A-Z][a-z]*( [A-Z][a-z]*)*", "Hello World", 11, 1},
    {"[A-Z][a-z]*( [A-Z][a-z]*)*", "Hello world", 11, 0},
    {"[A-Z][a-z]*( [A-Z][a-z]*)*", "H", 1, 1},
    {"(\\+|-)\077\\d+(\\.\\d+)\077([eE][+-]\077\\d+)\077", "42", 2, 1},
    {"(\\+|-)\077\\d+(\\.\\d+)\077([eE][+-]\077\\d+)\077", "-3.14", 5, 1},
    {"(\\+|-)\077\\d+(\\.\\d+)\077([eE][+-]\077\\d+)\077", "+1e10", 5, 1},
    {"(\\+|-)\077\\d+(\\.\\d+)\077([eE][+-]\077\\d+)\077", "2.5E-3", 6, 1},
    {"(\\+|-)\077\\d+(\\.\\d+)\077([eE][+-]\077\\d+)\077", "1.", 2, 0},
    {"(\\+|-)\077\\d+(\\.\\d+)\077([eE][+-]\077\\d+)\077", ".5", 2, 0},
    {"(\\+|-)\077\\d+(\\.\\d+)\077([eE][+-]\077\\d+)\077", "e5", 2, 0},
    {"[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}", "john.doe@example.com", 20, 1},
    {"[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}", "a@b.c", 5, 0},
    {"[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}", "no-at.com", 9, 0},
    {"[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}", "x@y.io", 6, 1},
    {"(true|false|null)", "true", 4, 1},
    {"(true|false|null)", "false", 5, 1},
    {"(true|false|null)", "null", 4, 1},
    {"(true|false|null)", "nul", 3, 0},
    {"(true|false|null)", "True", 4, 0},
    {"\"([^\"\\\\]|\\\\.)*\"", "\"abc\"", 5, 1},
    {"\"([^\"\\\\]|\\\\.)*\"", "\"a\\\"b\"", 6, 1},
    {"\"([^\"\\\\]|\\\\.)*\"", "\"unterminated", 13, 0},
    {"\"([^\"\\\\]|\\\\.)*\"", "\"\\\\\"", 4, 1},
    {"\"([^\"\\\\]|\\\\.)*\"", "\"\"", 2, 1},
    {"(\\d{1,3}\\.){3}\\d{1,3}", "192.168.0.1", 11, 1},
    {"(\\d{1,3}\\.){3}\\d{1,3}", "1.2.3", 5, 0},
    {"(\\d{1,3}\\.){3}\\d{1,3}", "1234.1.1.1", 10, 0},
    {"#[0-9a-fA-F]{6}", "#a0B1c2", 7, 1},
    {"#[0-9a-fA-F]{6}", "#a0B1c", 6, 0},
    {"#[0-9a-fA-F]{6}", "#g0B1c2", 7, 0},
    {"(a|b|c|d|e|f|g|h|i|j)+", "abcdefghij", 10, 1},
    {"(a|b|c|d|e|f|g|h|i|j)+", "abk", 3, 0},
    {"(\077:(\077:a{2}){2}){2}", "aaaaaaaa", 8, 1},
    {"(\077:(\077:a{2}){2}){2}", "aaaaaaa", 7, 0},
    {"(ab|a)(bc|c)", "abc", 3, 1},
    {"(ab|a)(bc|c)", "abbc", 4, 1},
    {"(ab|a)(bc|c)", "ac", 2, 1},
    {"(a\077){3}a{3}", "aaa", 3, 1},
    {"(a\077){3}a{3}", "aaaaaa", 6, 1},
    {"(a\077){3}a{3}", "aaaaaaa", 7, 0},
    {"(a\077){3}a{3}", "aa", 2, 0},
    {"x*y*z*", "", 0, 1},
    {"x*y*z*", "xz", 2, 1},
    {"x*y*z*", "yx", 2, 0},
    {"x*y*z*", "xxyyzz", 6, 1},
    {"(|a)b", "b", 1, 1},
    {"(|a)b", "ab", 2, 1},
    {"a(|b|c)", "a", 1, 1},
    {"a(|b|c)", "ab", 2, 1},
    {"a(|b|c)", "ac", 2, 1},
    {"a(|b|c)", "abc", 3, 0},
    {"(\077:(\077:a\077)+)+b", "b", 1, 1},
    {"(\077:(\077:a\077)+)+b", "ab", 2, 1},
    {"(\077:(\077:a\077)+)+b", "aaab", 4, 1},
    {"(\077:(\077:a\077)+)+b", "a", 1, 0},
    {"((a+)\077)+c", "c", 1, 1},
    {"((a+)\077)+c", "ac", 2, 1},
    {"((a+)\077)+c", "aaac", 4, 1},
    {"((a+)\077)+c", "aa", 2, 0},
    {"(a+)\077", "", 0, 1},
    {"(a+)\077", "a", 1, 1},
    {"(a+)\077", "aa", 2, 1},
    {"(a+)\077", "b", 1, 0},
    {"(a\077)+", "", 0, 1},
    {"(a\077)+", "a", 1, 1},
    {"(a\077)+", "aaa", 3, 1},
    {"(a+)+", "", 0, 0},
    {"(a+)+", "a", 1, 1},
    {"(a+)+", "aaa", 3, 1},
    {"(a\077)\077", "", 0, 1},
    {"(a\077)\077", "a", 1, 1},
    {"(a\077)\077", "aa", 2, 0},
    {"((((((((a*)*)*)*)*)*)*)*)*b", "b", 1, 1},
    {"((((((((a*)*)*)*)*)*)*)*)*b", "aaaab", 5, 1},
    {"((((((((a*)*)*)*)*)*)*)*)*b", "aaaa", 4, 0},
    {"((a)){2,3}", "a", 1, 0},
    {"((a)){2,3}", "aa", 2, 1},
    {"((a)){2,3}", "aaa", 3, 1},
    {"((a)){2,3}", "aaaa", 4, 0},
    {"(a*){2}", "", 0, 1},
    {"(a*){2}", "aaaa", 4, 1},
    {"(a*){2}", "b", 1, 0},
    {"(a+){2}", "a", 1, 0},
    {"(a+){2}", "aa", 2, 1},
    {"(a+){2}", "aaaaa", 5, 1},
    {"(a{2})*", "", 0, 1},
    {"(a{2})*", "aa", 2, 1},
    {"(a{2})*", "aaa", 3, 0},
    {"(a{2})*", "aaaa", 4, 1},
    {"(a{2})+\077", "aa", 2, 1},
    {"(a{2})+\077", "aaaa", 4, 1},
    {"(a{2})+\077", "", 0, 0},
};

static int regex_cases(void) {
    int n = 0;
    const int N = (int)(sizeof RX / sizeof RX[0]);
    for (int i = 0; i < N; i++) {
        gram_grammar *g = NULL;
        int rc = gram_from_regex(RX[i].re, strlen(RX[i].re), NULL, &g);
        if (rc) {
            fprintf(stderr, "regex /%s/: %d %s\n", RX[i].re, rc, vc_errmsg());
            test_failures++;
            continue;
        }
        int got = full_match(g, RX[i].s, RX[i].n);
        CHECK_MSG(got == RX[i].match, "/%s/ on \"%.*s\": got %d, JavaScript says %d", RX[i].re, (int)RX[i].n,
                  RX[i].s, got, RX[i].match);
        gram_free(g);
        n++;
    }
    return n;
}

/* Compile p (regex or GBNF) and check one string. */
static void expect_re(const char *re, const char *s, int match, int line) {
    gram_grammar *g = NULL;
    int rc = gram_from_regex(re, strlen(re), NULL, &g);
    if (rc) {
        fprintf(stderr, "line %d: regex /%s/: %s\n", line, re, vc_errmsg());
        test_failures++;
        return;
    }
    int got = full_match(g, s, strlen(s));
    if (got != match) {
        fprintf(stderr, "line %d: /%s/ on \"%s\": got %d, want %d\n", line, re, s, got, match);
        test_failures++;
    }
    gram_free(g);
}
#define RE(re, s, m) expect_re(re, s, m, __LINE__)

/* Where compile.h says more than JavaScript's 'u' mode (Python's meanings). */
static void test_regex_python(void) {
    RE(".", "\r", 1);          /* JavaScript's '.' refuses \r \u2028 \u2029; compile.h: only \n */
    RE(".", "\xe2\x80\xa8", 1);
    RE("a{,3}", "", 1);        /* {,n} is {0,n} */
    RE("a{,3}", "aaa", 1);
    RE("a{,3}", "aaaa", 0);
    RE("a{", "a{", 1);         /* a '{' that starts no quantifier is itself */
    RE("a{x}", "a{x}", 1);
    RE("a{1,2", "a{1,2", 1);
    RE("a}", "a}", 1);
    RE("]", "]", 1);
    RE("(?P<word>\\w+)", "abc", 1);
    RE("\\U0001F600", "\xf0\x9f\x98\x80", 1);
    RE("[\\U0001F600-\\U0001F602]", "\xf0\x9f\x98\x81", 1);
    RE("\\é", "\xc3\xa9", 1);
    RE("a\0b", "a", 1); /* strlen: the pattern is "a" */
}

/* The pattern may hold NUL bytes (n is given). */
static void test_regex_nul(void) {
    gram_grammar *g = NULL;
    CHECK(gram_from_regex("a\0b", 3, NULL, &g) == 0);
    if (g) {
        CHECK(full_match(g, "a\0b", 3) == 1);
        CHECK(full_match(g, "a", 1) == 0);
        gram_free(g);
    }
    CHECK(gram_from_regex(NULL, 0, NULL, &g) == 0);
    if (g) {
        CHECK(full_match(g, "", 0) == 1);
        gram_free(g);
    }
}

/* gram_regex_rule inside a grammar of the caller's. */
static void test_regex_rule(void) {
    gram_builder *b = NULL;
    gram_grammar *g = NULL;
    CHECK(gram_builder_new(0, &b) == 0);
    int num = -1, word = -1;
    CHECK(gram_regex_rule(b, "[0-9]+", 6, 0, &num) == 0);
    CHECK(gram_regex_rule(b, "\\w{2}", 5, 0, &word) == 0);
    int root = gram_rule(b, "root");
    CHECK(root >= 0);
    CHECK(gram_alt(b, root) == 0);
    CHECK(gram_add_byte(b, '<') == 0);
    CHECK(gram_add_rule(b, num) == 0);
    CHECK(gram_add_byte(b, '>') == 0);
    CHECK(gram_alt(b, root) == 0);
    CHECK(gram_add_rule(b, word) == 0);
    CHECK(gram_build(b, root, &g) == 0);
    gram_builder_free(b);
    if (!g) return;
    CHECK(full_match(g, "<123>", 5) == 1);
    CHECK(full_match(g, "<>", 2) == 0);
    CHECK(full_match(g, "a_", 2) == 1);
    CHECK(full_match(g, "a_b", 3) == 0);
    gram_free(g);
    /* a bad pattern leaves an error, no rule */
    CHECK(gram_builder_new(0, &b) == 0);
    CHECK(gram_regex_rule(b, "(", 1, 0, &num) == VC_EINVAL);
    gram_builder_free(b);
}

/* ---------------------------------------------------------------- errors */

typedef struct {
    const char *src;
    size_t n; /* 0: strlen */
    const char *msg; /* exact message, or a part of it when it starts with '~' */
} err_case;

static void check_msg(const char *what, const char *src, const char *want, int rc) {
    const char *got = vc_errmsg();
    int ok = rc == VC_EINVAL && (want[0] == '~' ? strstr(got, want + 1) != NULL : strcmp(got, want) == 0);
    if (!ok) {
        fprintf(stderr, "%s \"%s\": want VC_EINVAL \"%s\", got %d \"%s\"\n", what, src, want, rc, rc ? got : "");
        test_failures++;
    }
}

static const err_case RX_ERR[] = {
    {"(ab", 0, "regex: unbalanced '(' at 0"},
    {"a(b(c)", 0, "regex: unbalanced '(' at 1"},
    {"ab)", 0, "regex: unbalanced ')' at 2"},
    {"a)(", 0, "regex: unbalanced ')' at 1"},
    {"a\\q", 0, "regex: bad escape \\q at 1"},
    {"\\i", 0, "~bad escape"},
    {"a\\", 0, "regex: trailing backslash at 1"},
    {"(a)\\1", 0, "regex: backreferences are not supported at 3"},
    {"(?<n>a)\\k<n>", 0, "~backreferences are not supported"},
    {"(?P<n>a)(?P=n)", 0, "~backreferences are not supported"},
    {"(?=a)", 0, "regex: lookahead is not supported at 0"},
    {"a(?!b)", 0, "regex: lookahead is not supported at 1"},
    {"(?<=a)b", 0, "regex: lookbehind is not supported at 0"},
    {"(?<!a)b", 0, "~lookbehind is not supported"},
    {"(?i)abc", 0, "~flags"},
    {"(?", 0, "~not supported"},
    {"(?<1a>x)", 0, "~bad group name"},
    {"a{5,2}", 0, "regex: bad repeat bounds {5,2} at 1"},
    {"a{1001}", 0, "regex: repeat bound {1001} exceeds the limit 1000 at 1"},
    {"a{2,99999999999999999999}", 0, "~exceeds the limit 1000"},
    {"a**", 0, "regex: nothing to repeat at 2"},
    {"a{2}{3}", 0, "~nothing to repeat"},
    {"a+*", 0, "~nothing to repeat"},
    {"*a", 0, "regex: nothing to repeat at 0"},
    {"a|?", 0, "~nothing to repeat"},
    {"(*)", 0, "~nothing to repeat"},
    {"^*", 0, "~nothing to repeat"},
    {"a++", 0, "regex: possessive quantifiers are not supported at 1"},
    {"a^b", 0, "regex: anchors inside the pattern are not supported at 1"},
    {"a$b", 0, "regex: anchors inside the pattern are not supported at 1"},
    {"(^a)", 0, "~anchors inside the pattern are not supported"},
    {"(a$)", 0, "~anchors inside the pattern are not supported"},
    {"a|^b", 0, "~anchors inside the pattern are not supported"},
    {"\\bword\\b", 0, "~word boundaries"},
    {"\\B", 0, "~word boundaries"},
    {"\\A", 0, "~not supported"},
    {"\\p{L}", 0, "~unicode property escapes"},
    {"[\\P{L}]", 0, "~unicode property escapes"},
    {"[abc", 0, "regex: unterminated character class at 0"},
    {"[", 0, "~unterminated character class"},
    {"[z-a]", 0, "regex: class range out of order at 1"},
    {"[\\d-z]", 0, "~bad class range"},
    {"[a-\\d]", 0, "~bad class range"},
    {"\\xZZ", 0, "regex: bad \\x escape at 0"},
    {"\\x4", 0, "~bad \\x escape"},
    {"\\u12", 0, "regex: bad \\u escape at 0"},
    {"\\u{110000}", 0, "~bad \\u{...} escape"},
    {"\\u{}", 0, "~bad \\u{...} escape"},
    {"\\uD800", 0, "~lone surrogate"},
    {"\\uDC00\\uD800", 0, "~lone surrogate"},
    {"\\c1", 0, "~bad \\c escape"},
    {"\\01", 0, "~octal escapes are not supported"},
    {"ab\xff", 0, "regex: invalid UTF-8 at 2"},
    {"\xc3", 0, "regex: invalid UTF-8 at 0"},
    {"\xc0\x80", 0, "~invalid UTF-8"},          /* overlong */
    {"\xed\xa0\x80", 0, "~invalid UTF-8"},      /* a surrogate */
    {"[\xf4\x90\x80\x80]", 0, "~invalid UTF-8"}, /* past U+10FFFF */
};

static const err_case GB_ERR[] = {
    {"root ::= foo", 0, "gbnf: undefined rule 'foo' at 9"},
    {"root ::= a b\na ::= \"x\"", 0, "gbnf: undefined rule 'b' at 11"},
    {"a ::= \"x\"", 0, "gbnf: no rule 'root'"},
    {"", 0, "gbnf: no rule 'root'"},
    {"# only a comment\n", 0, "gbnf: no rule 'root'"},
    {"root ::= \"a\"\nroot ::= \"b\"", 0, "gbnf: rule 'root' defined twice at 13"},
    {"root ::= x\nx ::= \"a\"\nx ::= \"b\"", 0, "~rule 'x' defined twice"},
    {"root ::= \"abc", 0, "gbnf: unterminated string at 9"},
    {"root ::= \"\\q\"", 0, "gbnf: unknown escape \\q at 10"},
    {"root ::= \"\\x4\"", 0, "~expecting 2 hex digits"},
    {"root ::= \"\\uD800\"", 0, "~invalid code point U+D800"},
    {"root ::= \"\\U00110000\"", 0, "~invalid code point"},
    {"root = \"a\"", 0, "gbnf: expecting ::= at 5"},
    {"root", 0, "~expecting ::="},
    {"::= \"a\"", 0, "gbnf: expecting a rule name at 0"},
    {"root ::= ( \"a\"", 0, "~expecting ')'"},
    {"root ::= ( \"a\" \n b ::= \"c\"", 0, "~expecting ')'"},
    {"root ::= \"a\" )", 0, "gbnf: expecting a newline or the end at 13"},
    {"root ::= *", 0, "gbnf: expecting an element before '*' at 9"},
    {"root ::= \"a\" | +", 0, "~expecting an element before '+'"},
    {"root ::= \"a\"{5,2}", 0, "gbnf: bad repeat bounds {5,2} at 12"},
    {"root ::= \"a\"{5000}", 0, "gbnf: repeat bound 5000 exceeds the limit 1000 at 12"},
    {"root ::= \"a\"{x}", 0, "~expecting an integer"},
    {"root ::= \"a\"{2", 0, "~expecting '}'"},
    {"root ::= \"a\"{,2}", 0, "~expecting an integer"},
    {"root ::= [z-a]", 0, "gbnf: class range out of order at 10"},
    {"root ::= [abc", 0, "gbnf: unterminated character class at 9"},
    {"root ::= <[1000]>", 0, "~token references are not supported"},
    {"root ::= \"\xff\"", 0, "gbnf: invalid UTF-8 at 10"},
    {"root ::= [\xe2\x82]", 0, "~invalid UTF-8"},
};

static void test_errors(void) {
    for (size_t i = 0; i < sizeof RX_ERR / sizeof RX_ERR[0]; i++) {
        const err_case *e = &RX_ERR[i];
        gram_grammar *g = (gram_grammar *)&g; /* must come back NULL */
        int rc = gram_from_regex(e->src, e->n ? e->n : strlen(e->src), NULL, &g);
        check_msg("regex", e->src, e->msg, rc);
        CHECK(g == NULL);
        if (!rc) gram_free(g);
    }
    for (size_t i = 0; i < sizeof GB_ERR / sizeof GB_ERR[0]; i++) {
        const err_case *e = &GB_ERR[i];
        gram_grammar *g = (gram_grammar *)&g;
        int rc = gram_from_gbnf(e->src, e->n ? e->n : strlen(e->src), NULL, &g);
        check_msg("gbnf", e->src, e->msg, rc);
        CHECK(g == NULL);
        if (!rc) gram_free(g);
    }
    /* limits of the caller's */
    gram_limits lim = {.max_repeat = 10};
    gram_grammar *g = NULL;
    check_msg("regex", "a{11}", "regex: repeat bound {11} exceeds the limit 10 at 1", gram_from_regex("a{11}", 5, &lim, &g));
    CHECK(gram_from_regex("a{10}", 5, &lim, &g) == 0);
    gram_free(g);
    g = NULL;
    check_msg("gbnf", "a{11}", "~exceeds the limit 10", gram_from_gbnf("root ::= \"a\"{0,11}", 18, &lim, &g));
    /* choice */
    const char *one[] = {"x"};
    size_t len1[] = {1};
    check_msg("choice", "", "choice: the list of choices is empty", gram_from_choice(one, len1, 0, &g));
    CHECK(g == NULL);
}

/* ---------------------------------------------------------------- limits */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static char *repeat_str(const char *open, int depth, const char *mid, const char *close) {
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    char *s = malloc((lo + lc) * (size_t)depth + lm + 1), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < depth; i++) memcpy(p, open, lo), p += lo;
    memcpy(p, mid, lm), p += lm;
    for (int i = 0; i < depth; i++) memcpy(p, close, lc), p += lc;
    *p = 0;
    return s;
}

static void test_too_large(void) {
    gram_grammar *g = NULL;
    double t0 = now();
    int rc = gram_from_regex("(((a{100}){100}){100})", 22, NULL, &g);
    double dt = now() - t0;
    check_msg("regex", "(((a{100}){100}){100})", "~grammar too large", rc);
    CHECK_MSG(dt < 0.5, "took %.3f s", dt);
    check_msg("regex", "(.{1000}){1000}", "~grammar too large", gram_from_regex("(.{1000}){1000}", 15, NULL, &g));
    check_msg("regex", "((a|b|c){1000}x){1000}", "~grammar too large",
              gram_from_regex("((a|b|c){1000}x){1000}", 22, NULL, &g));
    /* GBNF the same way (llama.cpp itself builds the copies), within an expression */
    static const char *const GB_BIG[] = {"root ::= (((\"a\"{100}){100}){100})",
                                         "root ::= ((\"a\"{0,1000}){0,1000}){0,1000}",
                                         "root ::= x\nx ::= ((\"ab\" [a-z] y){1000}){1000}\ny ::= \"c\""};
    for (int i = 0; i < 3; i++) {
        t0 = now();
        check_msg("gbnf", GB_BIG[i], "~grammar too large", gram_from_gbnf(GB_BIG[i], strlen(GB_BIG[i]), NULL, &g));
        CHECK_MSG(now() - t0 < 0.5, "took %.3f s", now() - t0);
    }
    check_msg("gbnf", "(x{2}){600}", "gbnf: grammar too large (the expression expands to more than 1000 elements) at 17",
              gram_from_gbnf("root ::= (\"x\"{2}){600}", 22, &(gram_limits){.max_elems = 1000}, &g));
    /* a smaller limit of the caller's */
    gram_limits lim = {.max_elems = 500};
    check_msg("regex", "a{300}b{300}", "~grammar too large", gram_from_regex("a{300}b{300}", 12, &lim, &g));
    check_msg("gbnf", "big", "~grammar too large", gram_from_gbnf("root ::= \"a\"{400} \"b\"{400}", 26, &lim, &g));
    char *big = repeat_str("", 0, "", "");
    free(big);
    /* what fits, fits: the nested repeat is references, not copies */
    RE("((a{10}){10}){10}", "", 0);
    CHECK(gram_from_regex("((ab{10}){10}){10}", 18, NULL, &g) == 0);
    if (g) {
        char s[1200];
        int n = 0;
        for (int i = 0; i < 100; i++) {
            s[n++] = 'a';
            for (int k = 0; k < 10; k++) s[n++] = 'b';
        }
        CHECK(full_match(g, s, (size_t)n) == 1);
        CHECK(full_match(g, s, (size_t)n - 1) == 0);
        gram_free(g);
    }
}

/* Nested nullable loops ((a*)*)* are cubic for an Earley matcher; the front ends build them as one
 * loop, so they stay fast. */
static void test_nested_time(void) {
    char s[400];
    memset(s, 'a', sizeof s);
    gram_grammar *g = NULL;
    static const char RE_SRC[] = "((((((((((a*)*)+)*)?)*)*)+)*)*)*";
    static const char GB_SRC[] = "root ::= ((((((((\"a\"*)*)+)*)?)*)*)+)* \"a\"*****";
    for (int k = 0; k < 2; k++) {
        int rc = k ? gram_from_gbnf(GB_SRC, sizeof GB_SRC - 1, NULL, &g) : gram_from_regex(RE_SRC, sizeof RE_SRC - 1, NULL, &g);
        CHECK(rc == 0);
        if (rc) continue;
        double t0 = now();
        CHECK(full_match(g, s, sizeof s) == 1);
        double dt = now() - t0;
        CHECK_MSG(dt < 0.5, "nested loops %d: %.3f s", k, dt);
        gram_free(g);
    }
}

/* Deep nesting: an error ("nested too deeply"), never a crash, on any stack. */
typedef struct {
    int depth;
    int gbnf;
    int rc;
    char msg[256];
} nest_job;

static void *nest_main(void *arg) {
    nest_job *j = arg;
    char *s = j->gbnf ? repeat_str("(", j->depth, "\"a\"", ")") : repeat_str("(", j->depth, "a", ")");
    if (!s) {
        j->rc = VC_ENOMEM;
        return NULL;
    }
    char *src = s;
    if (j->gbnf) {
        src = malloc(strlen(s) + 10);
        if (!src) {
            free(s);
            j->rc = VC_ENOMEM;
            return NULL;
        }
        strcpy(src, "root ::= ");
        strcat(src, s);
        free(s);
    }
    gram_grammar *g = NULL;
    j->rc = j->gbnf ? gram_from_gbnf(src, strlen(src), NULL, &g) : gram_from_regex(src, strlen(src), NULL, &g);
    snprintf(j->msg, sizeof j->msg, "%s", j->rc ? vc_errmsg() : "");
    if (!j->rc) {
        j->rc = full_match(g, "a", 1) == 1 ? 0 : -100;
        gram_free(g);
    }
    free(src);
    return NULL;
}

static void nest(int depth, int gbnf, size_t stack, int must_fail) {
    nest_job j = {.depth = depth, .gbnf = gbnf};
    if (stack) {
        pthread_attr_t a;
        pthread_t th;
        pthread_attr_init(&a);
        CHECK(pthread_attr_setstacksize(&a, stack) == 0);
        CHECK(pthread_create(&th, &a, nest_main, &j) == 0);
        pthread_attr_destroy(&a);
        pthread_join(th, NULL);
    } else {
        nest_main(&j);
    }
    if (must_fail || j.rc) {
        CHECK_MSG(j.rc == VC_EINVAL && strstr(j.msg, "nested too deeply"), "depth %d gbnf %d stack %zu: %d %s", depth,
                  gbnf, stack, j.rc, j.msg);
    }
}

static void test_nesting(void) {
    for (int gbnf = 0; gbnf < 2; gbnf++) {
        nest(10000, gbnf, 0, 1);
        nest(100000, gbnf, (size_t)128 << 10, 1);
        nest(900, gbnf, (size_t)128 << 10, 1);  /* the stack check, below the count limit */
        nest(900, gbnf, (size_t)512 << 10, 0);
        nest(200, gbnf, 0, 0);
    }
    nest(1000, 0, 0, 1); /* the count limit */
    nest(999, 0, (size_t)8 << 20, 0);
}

/* ---------------------------------------------------------------- GBNF */

typedef struct {
    const char *s;
    int match;
} gb_str;

static int gbnf_check(const char *src, const gb_str *ss, int line) {
    gram_grammar *g = NULL;
    int rc = gram_from_gbnf(src, strlen(src), NULL, &g), n = 0;
    if (rc) {
        fprintf(stderr, "line %d: gbnf: %s\n", line, vc_errmsg());
        test_failures++;
        return 0;
    }
    for (; ss[n].s; n++) {
        int got = full_match(g, ss[n].s, strlen(ss[n].s));
        if (got != ss[n].match) {
            fprintf(stderr, "line %d: gbnf on \"%s\": got %d, want %d\n", line, ss[n].s, got, ss[n].match);
            test_failures++;
        }
    }
    gram_free(g);
    return n;
}
#define GB(src, ...) (n += gbnf_check(src, (const gb_str[]){__VA_ARGS__, {NULL, 0}}, __LINE__))

static const char JSON_GBNF[] =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "\n"
    "object ::=\n"
    "  \"{\" ws (\n"
    "            string \":\" ws value\n"
    "    (\",\" ws string \":\" ws value)*\n"
    "  )? \"}\" ws\n"
    "\n"
    "array  ::=\n"
    "  \"[\" ws (\n"
    "            value\n"
    "    (\",\" ws value)*\n"
    "  )? \"]\" ws\n"
    "\n"
    "string ::=\n"
    "  \"\\\"\" (\n"
    "    [^\"\\\\\\x7F\\x00-\\x1F] |\n"
    "    \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) # escapes\n"
    "  )* \"\\\"\" ws\n"
    "\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws\n"
    "\n"
    "# Optional space: by convention, applied in this grammar after literal chars when allowed\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

static int test_gbnf(void) {
    int n = 0;
    GB(JSON_GBNF, {"{}", 1}, {"{\"a\": 1}", 1}, {"{\"a\": [1, 2.5, true, null], \"b\": {\"c\": \"x\\\"y\"}}", 1},
       {"{\"a\":\n  \"\\u00e9\"}", 1}, {"{\"a\": }", 0}, {"[]", 0}, {"{\"a\" 1}", 0}, {"{\"a\": 01}", 0},
       {"{\"a\": \"\x01\"}", 0}, {"{\"k\": \"caf\xc3\xa9\"}", 1}, {"{\"a\": -0.5e3}", 1}, {"{\"a\": 1,}", 0},
       {"{\"a\": \"\\q\"}", 0}, {"{\"a\": [[], {}]}", 1});
    const char *arith = "root ::= expr\n"
                        "expr ::= term ((\"+\" | \"-\") term)*\n"
                        "term ::= factor ((\"*\" | \"/\") factor)*\n"
                        "factor ::= num | \"(\" expr \")\" | \"-\" factor\n"
                        "num ::= [0-9]+\n";
    GB(arith, {"1+2*3", 1}, {"(1+2)*3", 1}, {"-(4)/2", 1}, {"((((7))))", 1}, {"1+", 0}, {"(1", 0}, {"", 0},
       {"1 + 2", 0}, {"--1", 1}, {"12*(3-4)/56", 1});
    GB("root ::= root \"a\" | \"b\"", {"b", 1}, {"baaa", 1}, {"ab", 0}, {"", 0}); /* left recursion */
    GB("# a comment\n"
       "root ::= \"x\"{2,3} y # trailing comment\n"
       "   # an indented comment line\n"
       "y ::= [a-c]{2} | \"z\"?\n",
       {"xxab", 1}, {"xxx", 1}, {"xx", 1}, {"xxxab", 1}, {"xxxxab", 0}, {"xxz", 1}, {"xxa", 0}, {"x", 0});
    GB("root ::= \"a\" |\n  \"b\" |\n\n  \"c\"", {"a", 1}, {"b", 1}, {"c", 1}, {"d", 0});
    GB("root ::= \"a\"\n  | \"b\" # continued\n\n  | \"c\"\nx ::= \"d\"", {"a", 1}, {"b", 1}, {"c", 1}, {"d", 0});
    GB("root ::= (\n  \"a\"\n  \"b\" # inside parentheses newlines are space\n)", {"ab", 1}, {"a", 0});
    GB("root ::= \"\\x41\\u00e9\\U0001F600\\n\\t\\r\\\"\\\\\\[\\]\"", {"A\xc3\xa9\xf0\x9f\x98\x80\n\t\r\"\\[]", 1},
       {"A", 0});
    GB("root ::= [^\\n\\]]+", {"abc", 1}, {"a]", 0}, {"a\nb", 0}, {"\xc3\xa9", 1});
    GB("root ::= \"<\" .* \">\"", {"<a>b>", 1}, {"<\n>", 1}, {"<\xf0\x9f\x98\x80>", 1}, {"<", 0});
    GB("root ::= \"a\"{2,}", {"a", 0}, {"aa", 1}, {"aaaaa", 1});
    GB("root ::= \"a\"{ 1 , 2 } \"b\"{3}", {"abbb", 1}, {"aabbb", 1}, {"aaabbb", 0}, {"abb", 0});
    GB("root ::= \"a\"{0} \"b\"{0,} \"c\"{0,}", {"", 1}, {"bbccc", 1}, {"a", 0});
    GB("root ::= my-rule_2\nmy-rule_2 ::= \"ok\" | Rule3\nRule3 ::= [0-9]", {"ok", 1}, {"7", 1}, {"x", 0});
    GB("root ::= a\r\na ::= \"x\" b\r\n\r\nb ::= \"y\"\r\n", {"xy", 1}, {"x", 0});
    GB("root ::= (\"a\" | ) \"b\"", {"b", 1}, {"ab", 1}, {"aab", 0});
    GB("root ::= \"ab\"+", {"ab", 1}, {"abab", 1}, {"abb", 0}, {"", 0});
    GB("root ::= \"\" | \"x\"", {"", 1}, {"x", 1});
    GB("root ::= \"\"* \"a\" \"\"{2,3} ()+", {"a", 1}, {"", 0});
    GB("root ::= [a-zA-Z_] [a-zA-Z0-9_]*", {"_id9", 1}, {"9id", 0});
    GB("root ::= [\xce\xb1-\xcf\x89]+ [^a-z]", {"\xce\xb1\xce\xb2!", 1}, {"\xce\xb1z", 0}, {"\xce\xb1\xe6\x97\xa5", 1});
    GB("root ::= [-a]+ [a-]", {"--aa-", 1}, {"b", 0});
    GB("root ::= []? \"x\" | [^] ", {"x", 1}, {"y", 1}, {"\xe6\x97\xa5", 1}, {"", 0}, {"xx", 0}); /* [] nothing, [^] anything */
    GB("root ::= item (\",\" item)*\nitem ::= ws [0-9]+ ws\nws ::= [ \\t\\n]*", {"1, 2 ,3", 1}, {"1,,2", 0});
    GB("  root ::= \"a\"   # spaces before the name\n\n\n", {"a", 1});
    GB("root ::= x\nx ::= y\ny ::= x | \"z\"", {"z", 1}, {"", 0}); /* a cycle of references */
    /* repetitions of repetitions: llama.cpp's meaning, built as one repeat (see nested_time) */
    GB("root ::= \"a\"++ \"b\"*? ((\"c\"?)+)?", {"a", 1}, {"aab", 1}, {"abbccc", 1}, {"", 0}, {"ca", 0});
    GB("root ::= ((\"a\"+)?)+ \"x\" (\"ab\"*)* (\"y\"*){2}", {"x", 1}, {"aaxababyy", 1}, {"xaby", 1}, {"xba", 0}, {"xyyy", 1});
    return n;
}

/* ---------------------------------------------------------------- allocation failures */

/* In a -DVLLMC_FAULTS build (make test-faults' flags): allocation N fails, swept over N. Each
 * compile must fail with VC_ENOMEM and a message, or (when the failure never happened) give the
 * grammar a clean compile gives; LeakSanitizer checks the failure paths free everything. */
static int fault_op(int which, gram_grammar **g) {
    static const char RE_SRC[] = "(?:[a-z\\d]+|\\s\\S.|[^\u00e9-\u4e00]{2,3})*x?";
    const char *c[] = {"yes", "no"};
    size_t len[] = {3, 2};
    if (which == 0) return gram_from_regex(RE_SRC, sizeof RE_SRC - 1, NULL, g);
    if (which == 1) return gram_from_gbnf(JSON_GBNF, sizeof JSON_GBNF - 1, NULL, g);
    return gram_from_choice(c, len, 2, g);
}

static void test_faults(void) {
    if (!vc_fault_enabled()) return;
    static const char *const PROBE[] = {"ab1 x", "{\"a\": [1, \"b\"]}", "no"};
    for (int which = 0; which < 3; which++) {
        int n;
        for (n = 1; n < 100000; n++) {
            gram_grammar *g = NULL;
            vc_fault_arm(n);
            int rc = fault_op(which, &g);
            int hit = vc_fault_hit();
            vc_fault_disarm();
            if (rc) {
                CHECK_MSG(rc == VC_ENOMEM && vc_errmsg()[0], "op %d alloc %d: %d \"%s\"", which, n, rc, vc_errmsg());
                CHECK(g == NULL);
            } else {
                CHECK(full_match(g, PROBE[which], strlen(PROBE[which])) == 1);
                gram_free(g);
            }
            if (!hit) break;
        }
        printf("faults: op %d swept %d allocations\n", which, n);
    }
}

/* ---------------------------------------------------------------- choice */

static int test_choice(void) {
    const char *c[] = {"yes", "no", "maybe so", "caf\xc3\xa9", "", "no"};
    size_t len[] = {3, 2, 8, 5, 0, 2};
    gram_grammar *g = NULL;
    CHECK(gram_from_choice(c, len, 6, &g) == 0);
    if (!g) return 0;
    CHECK(full_match(g, "yes", 3) == 1);
    CHECK(full_match(g, "no", 2) == 1);
    CHECK(full_match(g, "maybe so", 8) == 1);
    CHECK(full_match(g, "caf\xc3\xa9", 5) == 1);
    CHECK(full_match(g, "", 0) == 1);
    CHECK(full_match(g, "ye", 2) == 0);
    CHECK(full_match(g, "yess", 4) == 0);
    CHECK(full_match(g, "maybe", 5) == 0);
    gram_free(g);
    const char *b[] = {"a\0b", "(?:x)"};
    size_t blen[] = {3, 5};
    CHECK(gram_from_choice(b, blen, 2, &g) == 0);
    if (!g) return 8;
    CHECK(full_match(g, "a\0b", 3) == 1);
    CHECK(full_match(g, "a", 1) == 0);
    CHECK(full_match(g, "(?:x)", 5) == 1); /* bytes as given: no regex meaning */
    CHECK(full_match(g, "x", 1) == 0);
    gram_free(g);
    return 12;
}

int main(void) {
    int nr = regex_cases();
    test_regex_python();
    test_regex_nul();
    test_regex_rule();
    test_errors();
    test_too_large();
    test_nested_time();
    test_nesting();
    int ng = test_gbnf();
    int nc = test_choice();
    test_faults();
    printf("regex: %d JavaScript cases; gbnf: %d strings; choice: %d; errors: %zu regex, %zu gbnf\n", nr, ng, nc,
           sizeof RX_ERR / sizeof RX_ERR[0], sizeof GB_ERR / sizeof GB_ERR[0]);
    TEST_END();
}
