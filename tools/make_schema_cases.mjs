// Writes tests/data/schema_cases.json: JSON Schemas with candidate outputs, each judged by ajv (draft
// 2020-12, with ajv-formats), the reference for the grammar engine's JSON Schema front end
// (tests/unit/test_grammar_schema.c). A case is {schema, text, valid, canonical}: `valid` is ajv's
// verdict on JSON.parse(text); `canonical` marks texts written as the grammar writes JSON (compact or
// with one whitespace run between tokens, properties in the schema's order), which the grammar must
// accept exactly when ajv does. Every other text must be refused when ajv refuses it.
// Usage (from the repository root): node tools/make_schema_cases.mjs
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
const require = createRequire(path.resolve("tests/js/package.json"));
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats");

const ajv = new Ajv2020({ strict: false, allErrors: false });
addFormats(ajv);

const S = (schema, canonical, other = []) => ({ schema, canonical, other });
const sets = [
  S({ type: "string" }, ['""', '"abc"', '"a\\"b"', '"\\u00e9"', '"é"', "1", "null"], ['"a\nb"']),
  S({ type: "string", minLength: 2, maxLength: 3 }, ['"a"', '"ab"', '"abc"', '"abcd"', '"é☃"', '"\\n\\t"']),
  S({ type: "string", pattern: "^[a-c]+x?$" }, ['"abc"', '"abx"', '"x"', '""', '"abcxx"']),
  S({ type: "string", format: "date" }, ['"2024-02-29"', '"2024-13-01"', '"24-01-01"', '"2024-01-32"']),
  S({ type: "string", format: "uuid" }, ['"123e4567-e89b-12d3-a456-426614174000"', '"123e4567e89b12d3a456426614174000"']),
  S({ type: "string", format: "ipv4" }, ['"192.168.0.1"', '"256.1.1.1"', '"1.2.3"', '"0.0.0.0"']),
  S({ type: "string", format: "email" }, ['"a.b@example.com"', '"a@b"', '"@x.com"', '"x@y.co"']),
  S({ type: "string", format: "date-time" }, ['"2024-01-02T03:04:05Z"', '"2024-01-02T03:04:05.123+02:00"'],
    ['"2024-01-02 03:04:05Z"', '"2024-01-02t03:04:05z"']),
  S({ type: "integer" }, ["0", "-7", "123", "01", "1.5", "-0"], ["1e3", "1.0"]),
  S({ type: "integer", minimum: -15, maximum: 127 }, ["-15", "-16", "0", "99", "127", "128", "-9", "100", "1000"]),
  S({ type: "integer", exclusiveMinimum: 9, exclusiveMaximum: 1000 }, ["9", "10", "999", "1000", "500", "99"]),
  S({ type: "integer", minimum: 1234 }, ["1233", "1234", "1299", "9999", "10000", "123456789", "999"]),
  S({ type: "integer", maximum: -5 }, ["-5", "-4", "-100000", "0", "-6"]),
  S({ type: "number" }, ["0", "-1.5", "3e10", "2.0E-3", "1.", ".5", "+1"]),
  S({ type: "boolean" }, ["true", "false", "null"]),
  S({ enum: ["red", "green", 3, null, { a: 1 }] }, ['"red"', '"blue"', "3", "null", '{"a":1}', '{"a":2}']),
  S({ const: "x\u0000y" }, ['"x\\u0000y"', '"xy"']),
  S({ type: "array", items: { type: "integer" }, minItems: 1, maxItems: 3 },
    ["[]", "[1]", "[1,2,3]", "[1,2,3,4]", "[1, 2]", '["a"]', "[ 1 ]"]),
  S({ type: "array", prefixItems: [{ type: "string" }, { type: "integer" }], items: false },
    ['["a",1]', '["a"]', "[]", '["a",1,2]', '[1,"a"]']),
  S({ type: "array", prefixItems: [{ type: "string" }], items: { type: "boolean" }, minItems: 2 },
    ['["a"]', '["a",true]', '["a",true,false]', "[]"]),
  S({ type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name"] },
    ['{"name":"x"}', '{"name":"x","age":3}', '{"age":3}', "{}", '{"name":"x", "age":3}', '{"name":"x","extra":1}'],
    ['{"age":3,"name":"x"}']),
  S({ type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } } },
    ["{}", '{"a":1}', '{"b":2}', '{"a":1,"b":2}'], ['{"a":1,"a":2}', '{"b":2,"a":1}']),
  S({ type: "object", properties: { a: { type: "integer" } }, additionalProperties: false }, ["{}", '{"a":1}', '{"a":1,"b":2}']),
  S({ type: "object", properties: { a: { type: "integer" } }, additionalProperties: { type: "string" } },
    ['{"a":1,"x":"y"}', '{"x":"y"}', '{"a":1,"x":2}']),
  S({ anyOf: [{ type: "string" }, { type: "integer" }] }, ['"a"', "1", "true"]),
  S({ type: ["string", "null"] }, ['"a"', "null", "1"]),
  S({ $defs: { node: { type: "object", properties: { v: { type: "integer" }, next: { anyOf: [{ $ref: "#/$defs/node" }, { type: "null" }] } }, required: ["v", "next"] } }, $ref: "#/$defs/node" },
    ['{"v":1,"next":null}', '{"v":1,"next":{"v":2,"next":null}}', '{"v":1}', '{"v":1,"next":{"v":2}}']),
  S({ allOf: [{ type: "object", properties: { a: { type: "string" } }, required: ["a"] }, { properties: { b: { type: "integer" } }, required: ["b"] }] },
    ['{"a":"x","b":1}', '{"a":"x"}', '{"b":1}']),
  S({}, ['{"a":[1,true,null,"x",{"b":-2.5e3}]}', "[]", "1", '"s"']),
  S({ type: "object", properties: { s: { type: "string" } }, required: ["s"] },
    ['{\n  "s": "x"\n}', '{ "s" : "x" }'], ['{\n\n"s":"x"}', '{"s":"x"}  ', '{  "s":"x"}']),
];

const cases = [];
for (const { schema, canonical, other } of sets) {
  const validate = ajv.compile(schema);
  for (const [list, canon] of [[canonical, true], [other, false]]) {
    for (const text of list) {
      let valid;
      try { valid = validate(JSON.parse(text)); } catch { valid = false; }
      cases.push({ schema, text, valid: !!valid, canonical: canon });
    }
  }
}
fs.writeFileSync("tests/data/schema_cases.json", JSON.stringify(cases, null, 1) + "\n");
console.log(`tests/data/schema_cases.json: ${cases.length} cases, ${cases.filter((c) => c.valid).length} valid per ajv`);
