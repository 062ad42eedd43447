/// The OpenAPI 3.1 description of the HTTP API. `OpenAPITests` fails when a registered route is
/// missing here.
public enum OpenAPIDocument {
    public static let yaml = #"""
openapi: 3.1.0
info:
  title: Canon case platform API
  version: 0.1.0
  description: |
    The regulatory case platform on Canon. Every /v1 route needs `Authorization: Bearer TOKEN`
    (`canon token --data DIR --user NAME` prints one). Errors are application/problem+json
    (RFC 9457). Every write answers with `position`, its outbox position.
servers:
  - url: http://127.0.0.1:8080
security:
  - bearer: []
tags:
  - name: cases
  - name: parties
  - name: evidence
  - name: operations
paths:
  /:
    get:
      summary: Console home page (HTML)
      security: []
      tags: [operations]
      responses:
        "200": { description: HTML page, content: { text/html: {} } }
  /health:
    get:
      summary: Liveness
      security: []
      tags: [operations]
      responses:
        "200": { description: The process is up, content: { application/json: { schema: { type: object, properties: { status: { type: string } } } } } }
  /ready:
    get:
      summary: Readiness (the canonical store answers)
      security: []
      tags: [operations]
      responses:
        "200": { description: Ready, content: { application/json: { schema: { $ref: "#/components/schemas/Readiness" } } } }
        "503": { $ref: "#/components/responses/Problem" }
  /openapi.yaml:
    get:
      summary: This document
      security: []
      tags: [operations]
      responses:
        "200": { description: OpenAPI 3.1 YAML, content: { application/yaml: {} } }
  /v1/me:
    get:
      summary: The authenticated principal
      tags: [operations]
      responses:
        "200": { description: The principal, content: { application/json: { schema: { $ref: "#/components/schemas/User" } } } }
        "401": { $ref: "#/components/responses/Problem" }
  /v1/cases:
    post:
      summary: Open a case (canonical write, with its case.opened event in the same transaction)
      tags: [cases]
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/OpenCase" } } }
      responses:
        "201":
          description: Opened
          headers: { ETag: { schema: { type: string } }, Location: { schema: { type: string } } }
          content: { application/json: { schema: { $ref: "#/components/schemas/WriteAnswer" } } }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "413": { $ref: "#/components/responses/Problem" }
        "415": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    get:
      summary: Read a case from the canonical store
      tags: [cases]
      responses:
        "200":
          description: The case; ETag is its version
          headers: { ETag: { schema: { type: string } } }
          content: { application/json: { schema: { $ref: "#/components/schemas/Case" } } }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/transitions:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    post:
      summary: Move a case through its state machine
      description: intake → triage → investigation → enforcement → closed, and closed → investigation (reopen). Any other move is 409.
      tags: [cases]
      parameters: [{ $ref: "#/components/parameters/IfMatch" }]
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/Transition" } } }
      responses:
        "200": { $ref: "#/components/responses/Written" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/assignment:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    post:
      summary: Assign an investigator of the case's team (reads canonical state)
      tags: [cases]
      parameters: [{ $ref: "#/components/parameters/IfMatch" }]
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/Assignment" } } }
      responses:
        "200": { $ref: "#/components/responses/Written" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/restriction:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    post:
      summary: Restrict or unrestrict a case (a priority event)
      tags: [cases]
      parameters: [{ $ref: "#/components/parameters/IfMatch" }]
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/Restriction" } } }
      responses:
        "200": { $ref: "#/components/responses/Written" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/purge:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    post:
      summary: "Purge a closed case (legal, admin): its rows go, a tombstone stays for each, and case.purged removes it from every derived store. 409 while a legal hold stands or the declared retention period since the case closed runs"
      tags: [cases]
      parameters: [{ $ref: "#/components/parameters/IfMatch" }]
      requestBody:
        required: true
        content: { application/json: { schema: { type: object, required: [reason], properties: { reason: { type: string } } } } }
      responses:
        "200": { $ref: "#/components/responses/Written" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/hold:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    get:
      summary: "Whether the case is under legal hold, since when, by whom and why (anyone who may see the case; canonical state)"
      tags: [cases]
      responses:
        "200": { description: The case's legal hold, content: { application/json: { schema: { type: object, properties: { case_id: { type: string }, held: { type: boolean }, hold: { type: object, properties: { case_id: { type: string }, reason: { type: string }, placed_at: { type: string, format: date-time }, placed_by: { type: string } } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
    post:
      summary: "Place a legal hold on the case (legal, admin): while it stands every purge of the case is refused, by hand or by the retention job (409 when one already stands)"
      tags: [cases]
      parameters: [{ $ref: "#/components/parameters/IfMatch" }]
      requestBody:
        required: true
        content: { application/json: { schema: { type: object, required: [reason], properties: { reason: { type: string } } } } }
      responses:
        "200": { $ref: "#/components/responses/Written" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/hold/release:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    post:
      summary: "Lift the case's legal hold (legal, admin; 409 when none stands)"
      tags: [cases]
      parameters: [{ $ref: "#/components/parameters/IfMatch" }]
      requestBody:
        required: true
        content: { application/json: { schema: { type: object, required: [reason], properties: { reason: { type: string } } } } }
      responses:
        "200": { $ref: "#/components/responses/Written" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/history:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    get:
      summary: The case's append-only status history
      tags: [cases]
      responses:
        "200":
          description: Every status change, oldest first, starting with the opening
          content:
            application/json:
              schema:
                type: object
                properties:
                  case_id: { type: string }
                  entries: { type: array, items: { $ref: "#/components/schemas/HistoryEntry" } }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/parties:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    post:
      summary: Link a registered party to the case with a role
      tags: [cases, parties]
      parameters: [{ $ref: "#/components/parameters/IfMatch" }]
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/LinkParty" } } }
      responses:
        "201": { description: Linked, content: { application/json: { schema: { type: object, properties: { case_id: { type: string }, party_id: { type: string }, role: { type: string }, version: { type: integer }, position: { type: integer } } } } } }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
    get:
      summary: The case's parties (PII masked by role)
      tags: [cases, parties]
      responses:
        "200": { description: Linked parties, content: { application/json: { schema: { type: object, properties: { case_id: { type: string }, parties: { type: array, items: { $ref: "#/components/schemas/Party" } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/evidence:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    post:
      summary: Record evidence metadata (the binary is addressed by its SHA-256)
      tags: [cases]
      parameters: [{ $ref: "#/components/parameters/IfMatch" }]
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/AddEvidence" } } }
      responses:
        "201": { description: Recorded, content: { application/json: { schema: { type: object, properties: { id: { type: string }, case_id: { type: string }, case_version: { type: integer }, position: { type: integer } } } } } }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
    get:
      summary: The case's evidence metadata
      tags: [cases]
      responses:
        "200": { description: Evidence, content: { application/json: { schema: { type: object, properties: { case_id: { type: string }, evidence: { type: array, items: { $ref: "#/components/schemas/Evidence" } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/team:
    parameters: [{ $ref: "#/components/parameters/CaseID" }, { $ref: "#/components/parameters/IfMatch" }]
    post:
      summary: "Hand the case to another team (supervisor of its team, legal, admin); the assignment is cleared; travels the priority path"
      tags: [cases]
      requestBody:
        required: true
        content: { application/json: { schema: { type: object, required: [team, reason], properties: { team: { type: string }, reason: { type: string } } } } }
      responses:
        "200": { description: Handed over, content: { application/json: { schema: { type: object, properties: { id: { type: string }, version: { type: integer }, position: { type: integer } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
        "412": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/evidence/{evidence}:
    parameters: [{ $ref: "#/components/parameters/CaseID" }, { name: evidence, in: path, required: true, schema: { type: string } }]
    get:
      summary: "One piece of evidence, from canonical state (view restricted evidence: never-stale, audited)"
      tags: [cases]
      responses:
        "200": { description: The evidence metadata, content: { application/json: { schema: { $ref: "#/components/schemas/Evidence" } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/enforcement-notice:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    post:
      summary: "Generate the case's enforcement notice from canonical state (never-stale: no projection is read); only in enforcement, with at least one piece of evidence"
      tags: [cases]
      responses:
        "200": { description: The notice, content: { application/json: { schema: { type: object, properties: { reference: { type: string }, case_id: { type: string }, case_version: { type: integer }, issued_at: { type: string, format: date-time }, issued_by: { type: string }, parties: { type: array, items: { type: object } }, evidence: { type: array, items: { type: object } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
  /v1/parties:
    post:
      summary: Register a person or an organisation
      tags: [parties]
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/RegisterParty" } } }
      responses:
        "201": { description: Registered, content: { application/json: { schema: { $ref: "#/components/schemas/WriteAnswer" } } } }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/parties/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: string, format: uuid } }]
    get:
      summary: Read a party (PII masked by role)
      tags: [parties]
      responses:
        "200": { description: The party, content: { application/json: { schema: { $ref: "#/components/schemas/Party" } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
  /metrics:
    get:
      summary: "Prometheus metrics (projection lag, apply duration, errors, dead letters, outbox writes)"
      security: []
      tags: [operations]
      responses:
        "200": { description: Prometheus text exposition, content: { text/plain: {} } }
  /v1/search/cases:
    get:
      summary: Search cases (derived store; stale reads allowed, freshness shown)
      description: bm25 ranking, prefix matching, spelling correction when the words find little, highlighted snippets, facet counts that honour the other filters, keyset pagination. Results and facets are filtered for the principal.
      tags: [cases]
      parameters:
        - { name: q, in: query, schema: { type: string } }
        - { name: status, in: query, schema: { $ref: "#/components/schemas/Status" } }
        - { name: sector, in: query, schema: { type: string } }
        - { name: region, in: query, schema: { type: string } }
        - { name: priority, in: query, schema: { type: string } }
        - { name: team, in: query, schema: { type: string } }
        - { name: assignee, in: query, schema: { type: string } }
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 100, default: 20 } }
        - { name: cursor, in: query, schema: { type: string } }
        - { $ref: "#/components/parameters/MinPosition" }
      responses:
        "200":
          description: A page of results
          headers: { $ref: "#/components/headers/FreshnessHeaders" }
          content:
            application/json:
              schema:
                type: object
                properties:
                  results: { type: array, items: { type: object } }
                  facets: { type: object, additionalProperties: { type: object, additionalProperties: { type: integer } } }
                  freshness: { $ref: "#/components/schemas/Freshness" }
                  next_cursor: { type: [string, "null"] }
                  corrected_query: { type: [string, "null"] }
        "401": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
        "503": { $ref: "#/components/responses/Problem" }
  /v1/cases/{id}/timeline:
    parameters: [{ $ref: "#/components/parameters/CaseID" }]
    get:
      summary: The case's timeline (derived store; freshness shown)
      tags: [cases]
      parameters:
        - { $ref: "#/components/parameters/MinPosition" }
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 1000, default: 500 } }
      responses:
        "200":
          description: Entries oldest first
          content:
            application/json:
              schema:
                type: object
                properties:
                  case_id: { type: string }
                  entries: { type: array, items: { type: object } }
                  freshness: { $ref: "#/components/schemas/Freshness" }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "503": { $ref: "#/components/responses/Problem" }
  /v1/ops/projections:
    get:
      summary: "One row per projection: name, version, position, lag, state, heartbeat, dead letters"
      tags: [operations]
      responses:
        "200": { description: Projection status, content: { application/json: { schema: { type: object, properties: { projections: { type: array, items: { $ref: "#/components/schemas/ProjectionStatus" } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
  /v1/evidence/semantic:
    get:
      summary: "Semantic evidence retrieval: exact k-NN by cosine over MiniLM embeddings of evidence titles and descriptions; each result is re-authorized on canonical state and names its source version and model"
      tags: [evidence]
      parameters:
        - { name: q, in: query, required: true, schema: { type: string, minLength: 1, maxLength: 1000 } }
        - { name: k, in: query, schema: { type: integer, minimum: 1, maximum: 50, default: 10 } }
        - { name: min_position, in: query, schema: { type: integer, minimum: 0 } }
      responses:
        "200": { description: The nearest evidence, content: { application/json: { schema: { type: object, properties: { query: { type: string }, model: { type: object }, results: { type: array, items: { type: object, properties: { evidence_id: { type: string }, case_id: { type: string }, title: { type: string }, score: { type: number }, source_version: { type: integer }, current_version: { type: integer }, model: { type: object } } } }, freshness: { $ref: "#/components/schemas/Freshness" } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
        "503": { $ref: "#/components/responses/Problem" }
  /v1/ops/audit:
    get:
      summary: "The access audit, newest first: every read of restricted data and every sensitive action, allowed or denied (admin and legal)"
      tags: [operations]
      parameters:
        - { name: principal, in: query, schema: { type: string } }
        - { name: action, in: query, schema: { type: string } }
        - { name: decision, in: query, schema: { type: string, enum: [allowed, denied] } }
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 1000, default: 100 } }
      responses:
        "200": { description: Audit entries, content: { application/json: { schema: { type: object, properties: { entries: { type: array, items: { type: object, properties: { id: { type: string }, at: { type: string, format: date-time }, principal: { type: string }, role: { type: string }, action: { type: string }, target: { type: string }, decision: { type: string }, reason: { type: string } } } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/ops/drift:
    get:
      summary: "Each live derived store's newest drift check of each mode (full, sample, since)"
      tags: [operations]
      responses:
        "200": { description: Drift summaries, content: { application/json: { schema: { type: object, properties: { stores: { type: array, items: { type: object, properties: { name: { type: string }, version: { type: integer }, checks: { type: array, items: { $ref: "#/components/schemas/DriftSummary" } } } } }, not_checkable: { type: array, description: "Live stores that cannot be drift-checked (none of the platform's, on either engine): no result is not a clean result", items: { type: string } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
  /v1/ops/drift/{name}:
    parameters: [{ $ref: "#/components/parameters/ProjectionName" }]
    post:
      summary: "Run a drift check now (admin): every key where the store differs from canonical state, as missing, extra or stale"
      tags: [operations]
      parameters: &driftParameters
        - { name: mode, in: query, schema: { type: string, enum: [full, sample, since], default: full } }
        - { name: since, in: query, schema: { type: integer, minimum: 0 } }
        - { name: segments, in: query, schema: { type: integer, minimum: 2, maximum: 1024, default: 32 } }
        - { name: threshold, in: query, schema: { type: integer, minimum: 1, default: 1024 } }
        - { name: sample, in: query, schema: { type: integer, minimum: 1, default: 200 } }
      responses:
        "200": { description: The drift report, content: { application/json: { schema: { $ref: "#/components/schemas/DriftReport" } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/ops/drift/{name}/repair:
    parameters: [{ $ref: "#/components/parameters/ProjectionName" }]
    post:
      summary: "Check, re-project exactly the differing keys at the store's checkpoint, and verify (admin)"
      tags: [operations]
      parameters: *driftParameters
      responses:
        "200": { description: "What was found, repaired and verified", content: { application/json: { schema: { type: object, properties: { store: { type: string }, found: { $ref: "#/components/schemas/DriftReport" }, repaired: { type: array, items: { type: string } }, verified: { $ref: "#/components/schemas/DriftReport" }, attempts: { type: integer } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/ops/lifecycle/audit:
    get:
      summary: "Purged canonical records still present in a derived store (admin, legal): each with the store, key and whether the store has yet to apply the purge"
      tags: [operations]
      responses:
        "200": { description: Tombstone audit, content: { application/json: { schema: { type: object, properties: { tombstones: { type: integer }, stores_checked: { type: array, items: { type: string } }, stores_not_checked: { type: array, description: "Stores holding purged kinds of record that cannot be checked (none of the platform's, on either engine)", items: { type: string } }, findings: { type: array, items: { type: object, properties: { store: { type: string }, key: { type: string }, kind: { type: string }, case_id: { type: string }, purged_at: { type: string, format: date-time }, pending: { type: boolean } } } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
  /v1/ops/portfolio:
    get:
      summary: "The declared stores with their live status, version, freshness, lag and health (judged against each store's freshness contract)"
      tags: [operations]
      responses:
        "200": { description: Portfolio status, content: { application/json: { schema: { type: object, properties: { portfolio: { type: string }, stores: { type: array, items: { type: object, properties: { name: { type: string }, role: { type: string }, status: { type: string, enum: [planned, live] }, engine: { type: string }, owner: { type: string }, health: { type: string, enum: [ok, lagging, degraded, planned] }, version: { type: integer }, position: { type: integer }, freshness: { $ref: "#/components/schemas/Freshness" }, agent_state: { type: string }, p95_ms: { type: integer }, alert_after_ms: { type: integer }, drift: { $ref: "#/components/schemas/DriftSummary" }, drift_error: { type: string, description: "Why the store's kept drift checks could not be read; the store is then degraded" } } } } } } } } }
        "401": { $ref: "#/components/responses/Problem" }
  /v1/ops/projections/{name}/dead-letters:
    parameters: [{ $ref: "#/components/parameters/ProjectionName" }]
    get:
      summary: A projection's dead letters
      tags: [operations]
      responses:
        "200": { description: Dead letters, content: { application/json: { schema: { type: object } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
  /v1/ops/projections/{name}/dead-letters/{position}/retry:
    parameters: [{ $ref: "#/components/parameters/ProjectionName" }, { name: position, in: path, required: true, schema: { type: integer } }]
    post:
      summary: "Re-apply a parked event (admin); its stream is refolded so it lands once, in order"
      tags: [operations]
      responses:
        "200": { description: The dead letter, now retried, content: { application/json: { schema: { type: object } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
  /v1/ops/projections/{name}/dead-letters/{position}/skip:
    parameters: [{ $ref: "#/components/parameters/ProjectionName" }, { name: position, in: path, required: true, schema: { type: integer } }]
    post:
      summary: Leave a parked event unapplied on purpose (admin)
      tags: [operations]
      responses:
        "200": { description: The dead letter, now skipped, content: { application/json: { schema: { type: object } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
  /v1/ops/projections/{name}/replay:
    parameters: [{ $ref: "#/components/parameters/ProjectionName" }]
    post:
      summary: Re-apply a projection's events after a position (admin; idempotent)
      tags: [operations]
      requestBody:
        required: true
        content: { application/json: { schema: { type: object, required: [from], properties: { from: { type: integer, minimum: 0 } } } } }
      responses:
        "200": { description: Replay started, content: { application/json: { schema: { type: object } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "422": { $ref: "#/components/responses/Problem" }
  /v1/ops/projections/{name}/resume:
    parameters: [{ $ref: "#/components/parameters/ProjectionName" }]
    post:
      summary: Resume a projection its failure policy paused (admin)
      tags: [operations]
      responses:
        "200": { description: "Resumed; the agent retries the event it paused on", content: { application/json: { schema: { type: object } } } }
        "202": { description: "The agent runs in another process (forwarded_to, from its heartbeat); the request was sent there", content: { application/json: { schema: { type: object } } } }
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "409": { $ref: "#/components/responses/Problem" }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }
  headers:
    FreshnessHeaders:
      Canon-As-Of-Position: { schema: { type: integer } }
  parameters:
    MinPosition: { name: min_position, in: query, required: false, description: "Wait (bounded) until the store has applied this outbox position; 503 otherwise", schema: { type: integer, minimum: 0 } }
    ProjectionName: { name: name, in: path, required: true, schema: { type: string, enum: [case-search, case-timeline] } }
    CaseID: { name: id, in: path, required: true, schema: { type: string, format: uuid } }
    IfMatch: { name: If-Match, in: header, required: false, description: 'The case version the change expects, e.g. "3"; 412 when stale', schema: { type: string } }
  responses:
    Problem:
      description: An RFC 9457 problem document
      content: { application/problem+json: { schema: { $ref: "#/components/schemas/Problem" } } }
    Written:
      description: Written; position is the outbox position of the write
      headers: { ETag: { schema: { type: string } } }
      content: { application/json: { schema: { $ref: "#/components/schemas/WriteAnswer" } } }
  schemas:
    Freshness:
      type: object
      properties:
        as_of_position: { type: integer }
        as_of: { type: [string, "null"], format: date-time }
        lag_ms: { type: integer }
        lag_events: { type: integer }
    ProjectionStatus:
      type: object
      properties:
        name: { type: string }
        version: { type: integer }
        position: { type: integer }
        lag_events: { type: integer }
        lag_ms: { type: integer }
        state: { type: string, enum: [starting, catching-up, idle, retrying, paused, stopped, stalled] }
        heartbeat_age_ms: { type: [integer, "null"] }
        stalled: { type: boolean }
        dead_letters: { type: integer }
        last_error: { type: [string, "null"] }
        owner: { type: [string, "null"] }
        accelerator:
          description: "What answers the store's reads in this process (case search on SQLite: its memory index); absent for other stores"
          type: object
          properties:
            name: { type: string }
            state: { type: string, enum: [ready, loading, idle, "off"] }
            documents: { type: [integer, "null"] }
            bytes: { type: [integer, "null"] }
    Problem:
      type: object
      required: [type, title, status, detail]
      properties:
        type: { type: string }
        title: { type: string }
        status: { type: integer }
        detail: { type: string }
        instance: { type: string }
        field: { type: string }
    WriteAnswer:
      type: object
      required: [id, version, position]
      properties:
        id: { type: string }
        version: { type: integer }
        status: { $ref: "#/components/schemas/Status" }
        position: { type: integer }
    Readiness:
      type: object
      properties: { status: { type: string }, head_position: { type: integer } }
    Status: { type: string, enum: [intake, triage, investigation, enforcement, closed] }
    OpenCase:
      type: object
      required: [title, summary, sector, region, priority]
      properties:
        title: { type: string, maxLength: 200 }
        summary: { type: string, maxLength: 5000 }
        sector: { type: string, enum: [banking, insurance, energy, telecoms, healthcare, transport, retail, pharmaceuticals, utilities, gambling] }
        region: { type: string, enum: [north, south, east, west, central] }
        priority: { type: string, enum: [low, medium, high, critical] }
        team: { type: string, description: Defaults to the principal's team }
    Case:
      type: object
      properties:
        id: { type: string, format: uuid }
        title: { type: string }
        summary: { type: string }
        sector: { type: string }
        region: { type: string }
        priority: { type: string }
        status: { $ref: "#/components/schemas/Status" }
        team: { type: string }
        assignee: { type: [string, "null"] }
        restricted: { type: boolean }
        sla_due_at: { type: string, format: date-time }
        version: { type: integer }
        opened_at: { type: string, format: date-time }
        opened_by: { type: string }
        updated_at: { type: string, format: date-time }
    Transition:
      type: object
      required: [to, reason]
      properties: { to: { $ref: "#/components/schemas/Status" }, reason: { type: string, maxLength: 2000 } }
    Assignment:
      type: object
      required: [investigator]
      properties: { investigator: { type: string, description: User id of an investigator in the case's team } }
    DriftSummary:
      type: object
      properties: { mode: { type: string }, position: { type: integer }, checked_at: { type: string, format: date-time }, differences: { type: integer }, missing: { type: integer }, extra: { type: integer }, stale: { type: integer }, keys: { type: integer }, seconds: { type: number } }
    DriftReport:
      type: object
      properties:
        store: { type: string }
        version: { type: integer }
        mode: { type: string, enum: [full, sample, since] }
        position: { type: integer, description: "The store's checkpoint the check was taken at; keys changed after it are lag, not drift" }
        canonical_head: { type: integer }
        since: { type: integer }
        checked_at: { type: string, format: date-time }
        expected_keys: { type: integer }
        stored_keys: { type: integer }
        keys_compared: { type: integer }
        ranges_compared: { type: integer }
        differences: { type: array, items: { type: object, properties: { key: { type: string }, kind: { type: string, enum: [missing, extra, stale] }, detail: { type: string } } } }
        lagging: { type: integer }
        lagging_sample: { type: array, items: { type: string } }
        expected_recomputed: { type: integer }
        phase_seconds: { type: object, additionalProperties: { type: number } }
        seconds: { type: number }
    Restriction:
      type: object
      required: [restricted, reason]
      properties: { restricted: { type: boolean }, reason: { type: string }, clearance: { type: integer, minimum: 1, maximum: 3, description: "The clearance a team member needs to see the case while restricted; unchanged when absent" } }
    HistoryEntry:
      type: object
      properties:
        case_id: { type: string }
        case_version: { type: integer }
        from: { type: [string, "null"] }
        to: { type: string }
        reason: { type: string }
        actor: { type: string }
        at: { type: string, format: date-time }
    RegisterParty:
      type: object
      required: [kind, name]
      properties:
        kind: { type: string, enum: [person, organisation] }
        name: { type: string }
        email: { type: string }
        national_id: { type: string }
    Party:
      type: object
      properties:
        id: { type: string }
        kind: { type: string }
        name: { type: string }
        email: { type: [string, "null"] }
        national_id: { type: [string, "null"] }
        masked: { type: boolean }
        role: { type: string }
    LinkParty:
      type: object
      required: [party_id, role]
      properties: { party_id: { type: string, format: uuid }, role: { type: string, enum: [subject, complainant, witness] } }
    AddEvidence:
      type: object
      required: [title, description, media_type, size_bytes, sha256]
      properties:
        title: { type: string }
        description: { type: string }
        media_type: { type: string }
        size_bytes: { type: integer, minimum: 0 }
        sha256: { type: string, pattern: "^[0-9a-f]{64}$" }
    Evidence:
      type: object
      properties:
        id: { type: string }
        case_id: { type: string }
        title: { type: string }
        description: { type: string }
        media_type: { type: string }
        size_bytes: { type: integer }
        sha256: { type: string }
        version: { type: integer }
        added_at: { type: string, format: date-time }
        added_by: { type: string }
    User:
      type: object
      properties:
        id: { type: string }
        display_name: { type: string }
        role: { type: string, enum: [investigator, supervisor, analyst, legal, admin] }
        team: { type: [string, "null"] }
        clearance: { type: integer }
"""#
}
