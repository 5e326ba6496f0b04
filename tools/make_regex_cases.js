// tools/make_regex_cases.js: run with node from the repository root; prints the C table embedded in
// tests/unit/test_grammar_compile.c (the expected column is JavaScript RegExp's full match, 'u' flag).
// Generates the (pattern, string, expected) table of test_grammar_compile.c from JS RegExp ('u' flag).
const P = [
  ['abc', ['abc', 'ab', 'abcd', '', 'abd']],
  ['', ['', 'a']],
  ['a|b|c', ['a', 'b', 'c', 'd', 'ab', '']],
  ['ab|cd', ['ab', 'cd', 'ad', 'abcd']],
  ['a*', ['', 'a', 'aaaa', 'b', 'aab']],
  ['a+', ['', 'a', 'aaa', 'ab']],
  ['a?b', ['b', 'ab', 'aab', 'a']],
  ['a{3}', ['aa', 'aaa', 'aaaa']],
  ['a{2,}', ['a', 'aa', 'aaaaaaa']],
  ['a{2,4}', ['a', 'aa', 'aaa', 'aaaa', 'aaaaa']],
  ['a{0,2}b', ['b', 'ab', 'aab', 'aaab']],
  ['a{0}b', ['b', 'ab']],
  ['(ab)*', ['', 'ab', 'abab', 'aba', 'ba']],
  ['(ab)+c', ['c', 'abc', 'ababc', 'abac']],
  ['(?:a|bc)+', ['a', 'bc', 'abca', 'abcb', '']],
  ['(a|b)*c(d|e)?', ['c', 'abbac', 'abcd', 'ce', 'cde', 'ac']],
  ['((a|b)(c|d)){2}', ['acbd', 'ac', 'adbcac', 'bdbd']],
  ['(((a)))', ['a', 'aa', '']],
  ['((a*)*)*', ['', 'aaa', 'b']],
  ['(a*)+b', ['b', 'aab', 'aa']],
  ['(a|ab)(c|bcd)(d*)', ['abcd', 'abcdd', 'acd', 'abc']],
  ['x(?:y(?:z(?:w)?)?)?', ['x', 'xy', 'xyz', 'xyzw', 'xz']],
  ['a*?b', ['b', 'aab', 'a']],
  ['a+?', ['a', 'aa', '']],
  ['a{2,3}?', ['aa', 'aaa', 'a']],
  ['(?<year>\\d{4})-(?<m>\\d{2})', ['2024-01', '202-01', '2024-1']],
  ['(?P<n>ab)c', ['abc', 'ab']],
  ['[abc]', ['a', 'b', 'c', 'd', 'ab']],
  ['[a-z]+', ['hello', 'Hello', '', 'abc1']],
  ['[^a-z]', ['A', 'a', '1', 'é', '\n']],
  ['[a-zA-Z0-9_]+', ['Az_09', 'a-b']],
  ['[-a]', ['-', 'a', 'b']],
  ['[a-]', ['-', 'a']],
  ['[\\-.]+', ['-.-', 'a']],
  ['[.]', ['.', 'a']],
  ['[\\]]', [']', '\\']],
  ['[\\\\]', ['\\', 'a']],
  ['[\\d]+', ['123', '12a']],
  ['[\\w-]+', ['ab-c_9', 'a b']],
  ['[^\\d]', ['a', '5', '-']],
  ['[\\D]', ['a', '5']],
  ['[^\\W]', ['a', '_', '-']],
  ['[\\s,]+', [' ,\t', 'a', '\u00a0,']],
  ['[^\\s]+', ['abc', 'a c', 'é']],
  ['[\\S]', ['a', ' ']],
  ['[]', ['', 'a']],
  ['[^]', ['a', '\n', 'é', '']],
  ['[α-ω]+', ['αβγ', 'abc', 'ω']],
  ['[^α-ω]', ['α', 'a', '😀']],
  ['[😀-😂]', ['😀', '😁', '😂', '😃']],
  ['[\\u0400-\\u04FF]+', ['Привет', 'Hello']],
  ['[\\u{1F600}-\\u{1F64F}]', ['😀', '😐', 'a']],
  ['[a-c\\d\\s]*', ['a1 c', 'a1 d']],
  ['[\\x41-\\x43]', ['A', 'C', 'D']],
  ['[\\b]', ['\b', 'b']],
  ['[\\t\\n]+', ['\t\n', ' ']],
  ['\\d+', ['0', '1234567890', '12a', '', '٣']],
  ['\\D+', ['abc', 'a1']],
  ['\\w+', ['foo_bar9', 'foo-bar', 'é']],
  ['\\W', ['-', 'a', 'é', ' ']],
  ['\\s', [' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\ufeff', '\u2028', '\u2029', '\u1680', '\u2000', '\u200a', '\u200b', '\u202f', '\u205f', '\u3000', 'a', '\u0085']],
  ['\\S', [' ', 'a', '\u3000', '😀']],
  ['.', ['a', 'é', '😀', '\n', '', 'ab', '\t']],
  ['.*', ['', 'anything at all', 'two\nlines']],
  ['a.c', ['abc', 'a.c', 'aéc', 'ac', 'a\nc']],
  ['\\.', ['.', 'a']],
  ['\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\/\\\\', ['*+?()[]{}|^$/\\']],
  ['\\n\\t\\r\\f\\v', ['\n\t\r\f\v']],
  ['\\0', ['\0', '0']],
  ['\\x41\\x7a', ['Az', 'AZ']],
  ['\\u00e9', ['é', 'e']],
  ['\\u{1F600}', ['😀', '']],
  ['\\uD83D\\uDE00', ['😀']],
  ['\\cJ', ['\n', 'J']],
  ['é+', ['é', 'ééé', 'e']],
  ['日本語', ['日本語', '日本']],
  ['(日|本)+', ['日本日', '語']],
  ['😀{2}', ['😀😀', '😀']],
  ['^abc$', ['abc', 'abcd']],
  ['^a|b$', ['a', 'b', 'ab']],
  ['^$', ['', 'a']],

  ['\\d{3}-\\d{4}', ['555-1234', '55-1234', '5555-1234']],
  ['[A-Z][a-z]*( [A-Z][a-z]*)*', ['Hello World', 'Hello world', 'H']],
  ['(\\+|-)?\\d+(\\.\\d+)?([eE][+-]?\\d+)?', ['42', '-3.14', '+1e10', '2.5E-3', '1.', '.5', 'e5']],
  ['[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}', ['john.doe@example.com', 'a@b.c', 'no-at.com', 'x@y.io']],
  ['(true|false|null)', ['true', 'false', 'null', 'nul', 'True']],
  ['"([^"\\\\]|\\\\.)*"', ['"abc"', '"a\\"b"', '"unterminated', '"\\\\"', '""']],
  ['(\\d{1,3}\\.){3}\\d{1,3}', ['192.168.0.1', '1.2.3', '1234.1.1.1']],
  ['#[0-9a-fA-F]{6}', ['#a0B1c2', '#a0B1c', '#g0B1c2']],
  ['(a|b|c|d|e|f|g|h|i|j)+', ['abcdefghij', 'abk']],
  ['(?:(?:a{2}){2}){2}', ['aaaaaaaa', 'aaaaaaa']],
  ['(ab|a)(bc|c)', ['abc', 'abbc', 'ac']],
  ['(a?){3}a{3}', ['aaa', 'aaaaaa', 'aaaaaaa', 'aa']],
  ['x*y*z*', ['', 'xz', 'yx', 'xxyyzz']],
  ['(|a)b', ['b', 'ab']],
  ['a(|b|c)', ['a', 'ab', 'ac', 'abc']],
  ['(?:(?:a?)+)+b', ['b', 'ab', 'aaab', 'a']],
  ['((a+)?)+c', ['c', 'ac', 'aaac', 'aa']],
  ['(a+)?', ['', 'a', 'aa', 'b']],
  ['(a?)+', ['', 'a', 'aaa']],
  ['(a+)+', ['', 'a', 'aaa']],
  ['(a?)?', ['', 'a', 'aa']],
  ['((((((((a*)*)*)*)*)*)*)*)*b', ['b', 'aaaab', 'aaaa']],
  ['((a)){2,3}', ['a', 'aa', 'aaa', 'aaaa']],
  ['(a*){2}', ['', 'aaaa', 'b']],
  ['(a+){2}', ['a', 'aa', 'aaaaa']],
  ['(a{2})*', ['', 'aa', 'aaa', 'aaaa']],
  ['(a{2})+?', ['aa', 'aaaa', '']],
];
function cstr(s) {
  const b = Buffer.from(s, 'utf8');
  let o = '"';
  for (const c of b) {
    if (c === 0x22) o += '\\"';
    else if (c === 0x5c) o += '\\\\';
    else if (c >= 0x20 && c < 0x7f && c !== 0x3f) o += String.fromCharCode(c);
    else o += '\\' + c.toString(8).padStart(3, '0');
  }
  return o + '"';
}
let lines = [], n = 0;
for (const [p, ss] of P) {
  if (!ss) continue;
  let re;
  try { re = new RegExp('^(?:' + p.replace(/\(\?P</g, '(?<') + ')$', 'u'); } catch (e) { console.error('JS rejects', p, e.message); continue; }
  for (const s of ss) {
    lines.push(`    {${cstr(p)}, ${cstr(s)}, ${Buffer.byteLength(s)}, ${re.test(s) ? 1 : 0}},`);
    n++;
  }
}
console.log(lines.join('\n'));
console.error('cases', n);
