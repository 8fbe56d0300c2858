// Reads {"sets": [{"nodes": [[id, weight], ...], "keys": [...]}, ...]} on stdin and prints,
// for each set, the owners the npm `hashring` package (default options) gives the keys.
// Used by generate.py; run with NODE_PATH pointing at a node_modules holding `hashring`.
'use strict';
const HashRing = require('hashring');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const { sets } = JSON.parse(input);
  const out = sets.map(({ nodes, keys }) => {
    const servers = {};
    for (const [id, weight] of nodes) servers[id] = weight;
    // `max cache size: 0` is irrelevant for results but keeps memory flat.
    const ring = new HashRing(servers, 'md5', { 'max cache size': 1 });
    return keys.map((k) => ring.get(k));
  });
  process.stdout.write(JSON.stringify(out));
});
