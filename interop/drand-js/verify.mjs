// drand's own JavaScript client (the npm package `drand-client`, pinned in package.json)
// fetching and verifying rounds from an endpoint in drand's HTTP format: a keyquorum node, or
// anything else that speaks it. The test suite runs it against keyquorum's beacon, so what a
// drand user's code would accept is checked by drand's code, not by ours.
//
// usage: node verify.mjs BASE_URL CHAIN_HASH PUBLIC_KEY ROUND|latest...
//
// BASE_URL is what the client is given (`http://host:port`, or `http://host:port/<chain hash>`
// for a chain served under its hash); CHAIN_HASH and PUBLIC_KEY are the values the caller
// trusts, which the client checks `/info` against. Prints one JSON line per round; exits 0 when
// every round verifies, 1 when one does not (or cannot be fetched), 2 on a usage error.
import { HttpCachingChain, HttpChainClient, fetchBeacon } from 'drand-client'

const [baseUrl, chainHash, publicKey, ...rounds] = process.argv.slice(2)
if (!baseUrl || !chainHash || !publicKey || rounds.length === 0) {
  console.error('usage: node verify.mjs BASE_URL CHAIN_HASH PUBLIC_KEY ROUND|latest...')
  process.exit(2)
}

const options = {
  disableBeaconVerification: false,
  noCache: true,
  chainVerificationParams: { chainHash, publicKey },
}
const client = new HttpChainClient(new HttpCachingChain(baseUrl, options), options)

async function verified(round) {
  if (round === 'latest') {
    // `fetchBeacon` without a round asks for the round due by the clock, which a chain that
    // stalled has not produced; `/public/latest` names what the endpoint has, and that round
    // is then fetched and verified like any other.
    const { round: latest } = await client.latest()
    return fetchBeacon(client, latest)
  }
  const number = Number(round)
  if (!Number.isSafeInteger(number) || number < 1) {
    console.error(`not a round number: ${round}`)
    process.exit(2)
  }
  return fetchBeacon(client, number)
}

let failed = false
for (const round of rounds) {
  try {
    const beacon = await verified(round)
    console.log(JSON.stringify({ round: beacon.round, verified: true, randomness: beacon.randomness }))
  } catch (e) {
    failed = true
    console.log(JSON.stringify({ round, verified: false, error: String(e && e.message ? e.message : e) }))
  }
}
process.exit(failed ? 1 : 0)
