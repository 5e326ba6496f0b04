// A fake Hugging Face Hub for tests/cli/test_hub.sh: node built-ins only, on 127.0.0.1.
//   node tests/js/fake_hub.mjs REPO_DIR [--port 0] [--drop-once] [--adapter ADAPTER_DIR]
// Prints "listening PORT", then one line per request:
// "REQ METHOD URL range=<Range or -> auth=<token or -> ua=<User-Agent or ->".
// Repositories (each with its own commit; revisions "main", "v1.0" and the commit itself):
//   test-org/tiny-llama          REPO_DIR's files, plus files vllmc must not fetch (README.md, .gitattributes,
//                                pytorch_model.bin, consolidated.safetensors, onnx/model.onnx)
//   test-org/tiny-llama-sharded  REPO_DIR with model.safetensors split in two shards and
//                                model.safetensors.index.json, plus consolidated.safetensors
//   test-org/gated               REPO_DIR's files; the model info is public (as on the Hub) but every resolve
//                                answers 401 without `Authorization: Bearer hf_test` and 403 with another token
//   test-org/no-weights          config.json and pytorch_model.bin only
//   test-org/tiny-lora           with --adapter DIR: DIR's files (a PEFT adapter), plus README.md and an
//                                adapter_model.bin that vllmc must not fetch
//   anything else                404 with X-Error-Code: RepoNotFound
// As on the Hub: GET /api/models/ORG/NAME/revision/REV -> {"sha", "siblings": [{"rfilename"}]};
// HEAD/GET /ORG/NAME/resolve/REV/FILE -> X-Repo-Commit; *.safetensors and *.bin are LFS files: a 302 to
// /cdn/<sha256> (an absolute URL) with X-Linked-Etag and X-Linked-Size; other files 200 with ETag (the git
// blob sha1). /cdn/ honours `Range: bytes=N-` (206). --drop-once: the first full GET of a /cdn/ file sends
// half of it, then drops the connection.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const args = process.argv.slice(2);
const dir = args.find((a, i) => !a.startsWith('--') && (i === 0 || (args[i - 1] !== '--port' && args[i - 1] !== '--adapter')));
const adapterDir = args.includes('--adapter') ? args[args.indexOf('--adapter') + 1] : null;
if (!dir) {
  console.error('usage: fake_hub.mjs REPO_DIR [--port 0] [--drop-once]');
  process.exit(2);
}
const port = Number(args.includes('--port') ? args[args.indexOf('--port') + 1] : 0);
let dropOnce = args.includes('--drop-once') || process.env.FAKE_HUB_DROP_ONCE === '1';
const TOKEN = 'hf_test';

function listFiles(root, rel = '') {
  const out = {};
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, listFiles(root, r));
    else out[r] = fs.readFileSync(path.join(root, r));
  }
  return out;
}

// model.safetensors -> two shards and an index, tensors alternating between them
function shard(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  const data = buf.subarray(8 + n);
  const names = Object.keys(header).filter((k) => k !== '__metadata__').sort();
  const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const parts = [{}, {}], chunks = [[], []], offs = [0, 0], weightMap = {};
  names.forEach((name, i) => {
    const s = i % 2, t = header[name], [b, e] = t.data_offsets;
    parts[s][name] = { ...t, data_offsets: [offs[s], offs[s] + (e - b)] };
    chunks[s].push(data.subarray(b, e));
    offs[s] += e - b;
    weightMap[name] = files[s];
  });
  const out = {};
  files.forEach((f, s) => {
    let h = JSON.stringify(parts[s]);
    while (h.length % 8) h += ' ';
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    out[f] = Buffer.concat([len, Buffer.from(h), ...chunks[s]]);
  });
  out['model.safetensors.index.json'] = Buffer.from(
    JSON.stringify({ metadata: { total_size: offs[0] + offs[1] }, weight_map: weightMap }, null, 2));
  return out;
}

const base = listFiles(dir);
const extras = {
  'README.md': Buffer.from('# tiny-llama\n'),
  '.gitattributes': Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n'),
  'pytorch_model.bin': Buffer.from('not a pickle, and never fetched'),
  'consolidated.safetensors': Buffer.from('never fetched'),
  'onnx/model.onnx': Buffer.from('never fetched'),
};
const sharded = { ...base };
delete sharded['model.safetensors'];
Object.assign(sharded, shard(base['model.safetensors']), { 'consolidated.safetensors': extras['consolidated.safetensors'] });

const sha1 = (b) => crypto.createHash('sha1').update(b).digest('hex');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const isLfs = (f) => f.endsWith('.safetensors') || f.endsWith('.bin');

const repos = {};
const cdn = {}; // sha256 -> content
function addRepo(id, files, gated = false) {
  const h = crypto.createHash('sha1').update(id);
  for (const f of Object.keys(files).sort()) h.update(f).update(files[f]);
  const commit = h.digest('hex');
  repos[id] = { id, files, gated, commit };
  for (const f of Object.keys(files)) if (isLfs(f)) cdn[sha256(files[f])] = files[f];
}
addRepo('test-org/tiny-llama', { ...base, ...extras });
addRepo('test-org/tiny-llama-sharded', sharded);
addRepo('test-org/gated', { ...base }, true);
if (adapterDir)
  addRepo('test-org/tiny-lora', { ...listFiles(adapterDir), 'README.md': Buffer.from('# tiny-lora\n'),
    'adapter_model.bin': Buffer.from('not a pickle, and never fetched') });
addRepo('test-org/no-weights', { 'config.json': base['config.json'], 'pytorch_model.bin': extras['pytorch_model.bin'] });

function send(res, status, headers, body = '') {
  res.writeHead(status, { 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
function hubError(res, status, code, message) {
  send(res, status, { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message },
    JSON.stringify({ error: message }));
}
function commitOf(repo, rev) {
  return rev === 'main' || rev === 'v1.0' || rev === repo.commit ? repo.commit : null;
}

function serveCdn(req, res, key) {
  const body = cdn[key];
  if (!body) return send(res, 404, {}, 'not found');
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range) {
    const start = Number(range[1]);
    if (start >= body.length) return send(res, 416, { 'Content-Range': `bytes */${body.length}` });
    const part = body.subarray(start);
    res.writeHead(206, { 'Content-Length': part.length, 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
      'Accept-Ranges': 'bytes', ETag: `"${key}"` });
    return res.end(req.method === 'HEAD' ? undefined : part);
  }
  res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes', ETag: `"${key}"` });
  if (req.method === 'HEAD') return res.end();
  if (dropOnce) {
    dropOnce = false;
    res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => res.socket.destroy(), 50));
    return;
  }
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  console.log(`REQ ${req.method} ${req.url} range=${req.headers.range ?? '-'} auth=${req.headers.authorization ?? '-'} ` +
    `ua=${req.headers['user-agent'] ?? '-'}`);
  const seg = url.pathname.split('/').slice(1);
  if (seg[0] === 'cdn' && seg.length === 2) return serveCdn(req, res, seg[1]);
  if (seg[0] === 'api' && seg[1] === 'models' && seg[4] === 'revision' && seg.length === 6 && req.method === 'GET') {
    const id = `${seg[2]}/${seg[3]}`, repo = repos[id];
    if (!repo) return hubError(res, 404, 'RepoNotFound', 'Repository not found');
    const rev = decodeURIComponent(seg[5]), commit = commitOf(repo, rev);
    if (!commit) return hubError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    return send(res, 200, { 'Content-Type': 'application/json' }, JSON.stringify({
      _id: commit.slice(0, 24), id, modelId: id, sha: commit, private: false, gated: repo.gated ? 'manual' : false,
      siblings: Object.keys(repo.files).sort().map((rfilename) => ({ rfilename })),
    }));
  }
  if (seg[2] === 'resolve' && seg.length >= 5 && (req.method === 'GET' || req.method === 'HEAD')) {
    const id = `${seg[0]}/${seg[1]}`, repo = repos[id];
    if (!repo) return hubError(res, 404, 'RepoNotFound', 'Repository not found');
    if (repo.gated && req.headers.authorization !== `Bearer ${TOKEN}`) {
      return hubError(res, req.headers.authorization ? 403 : 401, 'GatedRepo',
        `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
    }
    const rev = decodeURIComponent(seg[3]), commit = commitOf(repo, rev);
    if (!commit) return hubError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const file = seg.slice(4).map(decodeURIComponent).join('/'), body = repo.files[file];
    if (!body) return hubError(res, 404, 'EntryNotFound', `Entry not found: ${file}`);
    const gitEtag = sha1(Buffer.concat([Buffer.from(`blob ${body.length}\0`), body]));
    if (isLfs(file)) {
      const key = sha256(body), loc = `http://${req.headers.host}/cdn/${key}`;
      return send(res, 302, { Location: loc, 'X-Repo-Commit': commit, 'X-Linked-Etag': `"${key}"`,
        'X-Linked-Size': String(body.length), ETag: `"${gitEtag}"` }, `Found. Redirecting to ${loc}`);
    }
    res.writeHead(200, { 'Content-Length': body.length, 'X-Repo-Commit': commit, ETag: `"${gitEtag}"` });
    return res.end(req.method === 'HEAD' ? undefined : body);
  }
  send(res, 404, {}, 'not found');
});
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
