import Canon
import Hummingbird

/// A small HTML page at `/`: what is running, where the API is, and a box to try it with a token.
struct HomeRoute {
    let services: PlatformServices

    func register(on router: Router<CanonRequestContext>) {
        router.get("/") { _, _ in
            let head = try await services.store.headPosition()
            let html = Self.page(head: head)
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
        }
    }

    static func page(head: OutboxPosition) -> String {
        #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Canon</title>
        <style>
          body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d232a; }
          code, pre, input { font: 13px ui-monospace, monospace; } pre { background: #f3f5f7; padding: .75rem; overflow: auto; }
          input { width: 100%; padding: .4rem; box-sizing: border-box; } button { margin-top: .5rem; padding: .4rem 1rem; }
          .stat { display: inline-block; margin-right: 2rem; } .stat b { font-size: 1.5rem; display: block; }
        </style></head><body>
        <h1>Canon — regulatory case platform</h1>
        <p>The canonical store (SQLite, WAL) with its transactional outbox.</p>
        <p><span class="stat"><b>\#(head)</b>outbox position</span></p>
        <p>API: <a href="/openapi.yaml">/openapi.yaml</a> · <a href="/health">/health</a> · <a href="/ready">/ready</a></p>
        <h2>Try it</h2>
        <label>Bearer token (printed by <code>canon demo</code> or <code>canon token</code>)<input id="token"></label>
        <label>Path<input id="path" value="/v1/me"></label>
        <button onclick="go()">GET</button>
        <pre id="out">…</pre>
        <script>
          async function go() {
            const r = await fetch(document.getElementById('path').value, { headers: { Authorization: 'Bearer ' + document.getElementById('token').value.trim() } });
            document.getElementById('out').textContent = r.status + '\n' + JSON.stringify(await r.json(), null, 2);
          }
        </script>
        </body></html>
        """#
    }
}
