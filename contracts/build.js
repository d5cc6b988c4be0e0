// Compiles contracts/src with the pinned solc-js and writes one artifact per deployable contract
// to contracts/out/<Name>.json (ABI and bytecode, which crates/evm embeds). `--check` compiles
// and fails if a committed artifact differs, so the artifacts can never drift from the source.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const PINNED = '0.8.30';
const root = __dirname;
// Deployable contracts: [source file, contract name].
const CONTRACTS = [
  ['Coordinator.sol', 'Coordinator'],
  ['Bls12381Verifier.sol', 'Bls12381Verifier'],
  ['BeaconConsumer.sol', 'BeaconConsumer'],
  // Created by the coordinator's constructor, not deployed on its own: its artifact lets a node
  // check the code the coordinator calls.
  ['EncodingReader.sol', 'EncodingReader'],
];

if (!solc.version().startsWith(PINNED + '+')) {
  console.error(`solc ${solc.version()} installed, ${PINNED} pinned: run npm ci in contracts/`);
  process.exit(1);
}

const sources = {};
for (const name of fs.readdirSync(path.join(root, 'src')).sort()) {
  if (name.endsWith('.sol')) {
    sources[name] = { content: fs.readFileSync(path.join(root, 'src', name), 'utf8') };
  }
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion: 'prague',
    viaIR: true,
    // runs = 1 favours small code: the coordinator is close to EIP-170's 24,576-byte limit even
    // with its BLS checks in Bls12381Verifier.
    optimizer: { enabled: true, runs: 1 },
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: Object.fromEntries(
      CONTRACTS.map(([file, name]) => [file, { [name]: [
          'abi',
          'evm.bytecode.object',
          'evm.deployedBytecode.object',
          'evm.deployedBytecode.immutableReferences',
        ] }]),
    ),
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: (p) => ({ error: `import ${p} not found` }) }));
let failed = false;
for (const e of output.errors || []) {
  console.error(e.formattedMessage);
  if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);
const check = process.argv.includes('--check');
for (const [file, name] of CONTRACTS) {
  const c = output.contracts[file][name];
  const outFile = path.join(root, 'out', `${name}.json`);
  const artifact = JSON.stringify(
    {
      compiler: `solc ${solc.version()}`,
      evmVersion: 'prague',
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      // Where the deployed code holds the constructor's immutables (zeros in deployedBytecode),
      // one list of [start, length] per immutable, ordered by its first place: a node compares
      // a deployment's code with this artifact's outside these ranges, and requires every
      // place of one immutable to hold the same value.
      immutableReferences: Object.values(c.evm.deployedBytecode.immutableReferences || {})
        .map((places) => places.map((r) => [r.start, r.length]).sort((a, b) => a[0] - b[0]))
        .sort((a, b) => a[0][0] - b[0][0]),
    },
    null,
    1,
  ) + '\n';
  const shown = path.relative(process.cwd(), outFile);
  if (check) {
    const committed = fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8') : '';
    if (committed !== artifact) {
      console.error(`${shown} is not the compiled source: run \`npm run build\` in contracts/ and commit it`);
      failed = true;
    } else {
      console.log(`${shown} matches the source`);
    }
  } else {
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, artifact);
    console.log(`wrote ${shown} (${c.evm.deployedBytecode.object.length / 2} bytes deployed)`);
  }
}
if (failed) process.exit(1);
