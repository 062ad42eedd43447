import Canon
import Hummingbird

/// A small HTML page at `/`: what is running, the portfolio's stores with their health, where the
/// API is, and a box to try it with a token.
struct HomeRoute {
    let services: PlatformServices

    func register(on router: Router<CanonRequestContext>) {
        router.get("/") { _, _ in
            let head = try await services.store.headPosition()
            let stores = try await services.portfolioStatus()
            let html = Self.page(head: head, portfolio: services.portfolio.name, stores: stores)
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func rows(_ stores: [PortfolioStoreStatus]) -> String {
        stores.map { store in
            let lag = store.freshness.map { "\($0.lagMilliseconds) ms" } ?? "—"
            let contract = store.alertAfterMilliseconds.map { alert in "p95 \(store.normalP95Milliseconds ?? 0) ms · alert \(alert) ms" } ?? "—"
            return "<tr><td>\(escape(store.name))</td><td>\(escape(store.role))</td><td>\(escape(store.status))</td><td>\(escape(store.engine ?? "—"))</td>"
                + "<td class=\"\(store.health.rawValue)\">\(store.health.rawValue)</td><td>\(store.position.map { "\($0)" } ?? "—")</td><td>\(lag)</td><td>\(contract)</td></tr>"
        }.joined(separator: "\n")
    }

    static func page(head: OutboxPosition, portfolio: String, stores: [PortfolioStoreStatus]) -> String {
        #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Canon</title>
        <style>
          body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d232a; }
          code, pre, input { font: 13px ui-monospace, monospace; } pre { background: #f3f5f7; padding: .75rem; overflow: auto; }
          input { width: 100%; padding: .4rem; box-sizing: border-box; } button { margin-top: .5rem; padding: .4rem 1rem; }
          .stat { display: inline-block; margin-right: 2rem; } .stat b { font-size: 1.5rem; display: block; }
          table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e3e7eb; }
          .ok { color: #116329; } .lagging { color: #9a6700; } .degraded { color: #cf222e; font-weight: bold; } .planned { color: #6e7781; }
        </style></head><body>
        <h1>Canon — regulatory case platform</h1>
        <p>The canonical store (\#(escape(stores.first { $0.role == "canonical" }?.engine ?? "undeclared engine"))) with its transactional outbox.</p>
        <p><span class="stat"><b>\#(head)</b>outbox position</span></p>
        <h2>Portfolio: \#(escape(portfolio))</h2>
        <p>Every store the platform declares, with its health judged against its freshness contract
        (<code>canon check</code> lints the portfolio; <code>GET /v1/ops/portfolio</code> serves this as JSON).</p>
        <table><tr><th>store</th><th>role</th><th>status</th><th>engine</th><th>health</th><th>position</th><th>lag</th><th>contract</th></tr>
        \#(rows(stores))
        </table>
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
