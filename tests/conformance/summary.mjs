// Reads the client's JSON results on standard input and prints the
// required tests passed and failed, then each failure, with the
// package's own verdict (display.mjs), dependencies honoured.
// usage: node summary.mjs SUITE_DIR < results.json
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const suite = process.argv[2]
const load = async name => import(pathToFileURL(path.join(suite, name)).href)
const tests = (await load('tests/index.mjs')).default
tests.push((await load('tests/surrogate-control.mjs')).default)
const { determineTestResult } = await load('lib/display.mjs')
const results = JSON.parse(fs.readFileSync(0, 'utf8'))

let passed = 0
let optimal = 0
let optimalPassed = 0
const failed = []
for (const group of tests) {
  for (const test of group.tests) {
    if (test.browser_only) continue
    const verdict = determineTestResult(tests, test.id, results)[2]
    if (test.kind === 'optimal') {
      optimal++
      if (verdict === '✅') optimalPassed++
      continue
    }
    if (test.kind !== undefined && test.kind !== 'required') continue
    if (verdict === '✅') {
      passed++
    } else {
      const detail = Array.isArray(results[test.id]) ? results[test.id][1] : 'not run'
      failed.push(`${verdict} ${group.id} ${test.id}: ${detail}`)
    }
  }
}
console.log(`required: ${passed} passed, ${failed.length} failed`)
for (const line of failed) console.log(line)
console.log(`optimal: ${optimalPassed} of ${optimal} passed`)
