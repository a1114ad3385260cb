// The suite's origin server, bound to 127.0.0.1: its own server.mjs
// listens on every interface. Same dispatch as server/server.mjs.
// usage: node origin.mjs SUITE_DIR PORT (0: any free one; the line it
// prints names it)
import http from 'http'
import path from 'path'
import { pathToFileURL } from 'url'

const [suite, port] = process.argv.slice(2)
const load = async name =>
  (await import(pathToFileURL(path.join(suite, 'server', name)).href)).default
const handlers = {
  config: await load('handle-config.mjs'),
  test: await load('handle-test.mjs'),
  state: await load('handle-state.mjs')
}
const handleFile = await load('handle-file.mjs')
const base = `http://127.0.0.1:${port}/`

const server = http.createServer((request, response) => {
  const url = new URL(request.url, base)
  const segments = url.pathname.split('/').slice(1)
  const handler = handlers[segments.shift()]
  if (handler) handler(segments, request, response)
  else handleFile(url, request, response)
})
server.listen(Number(port), '127.0.0.1', () =>
  console.log(`listening on http://127.0.0.1:${server.address().port}/`))
