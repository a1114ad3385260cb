// Reads the client's JSON results on standard input and prints the
// required tests passed and failed, then each failure, with the
// package's own verdict (display.mjs), dependencies honoured. With an
// expected-failures file (one test id a line, # comments), it exits 1
// when a required test fails that the file does not name, or one it
// names passes or is not a required test of the suite.
// usage: node summary.mjs SUITE_DIR [EXPECTED_FAILURES] < results.json
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const suite = process.argv[2]
const expectedFile = process.argv[3]
const load = async name => import(pathToFileURL(path.join(suite, name)).href)
const tests = (await load('tests/index.mjs')).default
tests.push((await load('tests/surrogate-control.mjs')).default)
const { determineTestResult } = await load('lib/display.mjs')
const results = JSON.parse(fs.readFileSync(0, 'utf8'))
const expected = new Set(expectedFile === undefined ? [] :
  fs.readFileSync(expectedFile, 'utf8').split('\n').map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#')))

let passed = 0
let expectedFailed = 0
let optimal = 0
let optimalPassed = 0
const failed = []
const problems = []
const required = new Set()
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
    required.add(test.id)
    if (verdict === '✅') {
      passed++
      if (expected.has(test.id)) problems.push(`passes now, no longer an expected failure: ${test.id}`)
    } else {
      const detail = Array.isArray(results[test.id]) ? results[test.id][1] : 'not run'
      if (expected.has(test.id)) {
        expectedFailed++
        failed.push(`${verdict} ${group.id} ${test.id}: ${detail} (expected)`)
      } else {
        failed.push(`${verdict} ${group.id} ${test.id}: ${detail}`)
        if (expectedFile !== undefined) problems.push(`fails, and is not an expected failure: ${test.id}`)
      }
    }
  }
}
for (const id of expected) {
  if (!required.has(id)) problems.push(`not a required test of the suite: ${id}`)
}
const known = expectedFile === undefined ? '' : ` (${expectedFailed} expected)`
console.log(`required: ${passed} passed, ${failed.length} failed${known}`)
for (const line of failed) console.log(line)
console.log(`optimal: ${optimalPassed} of ${optimal} passed`)
for (const line of problems) console.error(`conformance: ${line}`)
process.exit(problems.length > 0 ? 1 : 0)
