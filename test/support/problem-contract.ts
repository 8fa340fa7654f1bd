/**
 * The OpenAPI document's promise about errors, checked on every answer a test sees: each in-process
 * app of the suites (createTestApp) answers problem codes only where its operation lists them, so a
 * code added to a route without its line in `problems(...)` fails the first test that meets it.
 */

type Json = Record<string, unknown>;
type Operation = {
  method: string;
  template: string;
  pattern: RegExp;
  literals: number;
  codes: Map<number, Set<string>>;
};

export type OpenApiDocument = {
  paths: Record<string, Record<string, Json>>;
  components?: { schemas?: Json };
};

function resolve(doc: OpenApiDocument, schema: unknown): Json {
  const ref = (schema as Json | undefined)?.$ref;
  if (typeof ref === "string") return resolve(doc, doc.components?.schemas?.[ref.split("/").pop() ?? ""]);
  return (schema as Json | undefined) ?? {};
}

/** The codes a problem schema allows: its `code` enum, through $ref, allOf and oneOf. */
export function codesOf(doc: OpenApiDocument, schema: unknown): string[] {
  const resolved = resolve(doc, schema);
  const direct = ((resolved.properties as Json | undefined)?.code as Json | undefined)?.enum;
  const nested = [...((resolved.allOf as unknown[]) ?? []), ...((resolved.oneOf as unknown[]) ?? [])];
  return [...((direct as string[] | undefined) ?? []), ...nested.flatMap((part) => codesOf(doc, part))];
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
  return Object.entries(doc.paths).flatMap(([template, methods]) =>
    Object.entries(methods).map(([method, operation]) => {
      const codes = new Map<number, Set<string>>();
      for (const [status, response] of Object.entries((operation.responses as Record<string, Json>) ?? {})) {
        const schema = (response.content as Json | undefined)?.["application/problem+json"] as
          | Json
          | undefined;
        if (schema) codes.set(Number(status), new Set(codesOf(doc, schema.schema)));
      }
      const segments = template.split("/");
      return {
        method: method.toUpperCase(),
        template,
        pattern: new RegExp(`^${segments.map((part) => (part.startsWith("{") ? "[^/]+" : part)).join("/")}$`),
        literals: segments.filter((part) => !part.startsWith("{")).length,
        codes,
      };
    }),
  );
}

/** The operation a request reached, as the router would pick it: the most literal template wins. */
export function operationFor(operations: Operation[], method: string, path: string): Operation | undefined {
  return operations
    .filter((operation) => operation.method === method && operation.pattern.test(path))
    .sort((a, b) => b.literals - a.literals)[0];
}

/** Why an answer breaks the document, or undefined when it keeps it (or reached no documented route). */
export function undocumentedProblem(
  operations: Operation[],
  answer: { method: string; path: string; status: number; code: unknown },
): string | undefined {
  const operation = operationFor(operations, answer.method, answer.path);
  if (!operation) return undefined;
  if (operation.codes.get(answer.status)?.has(String(answer.code))) return undefined;
  return (
    `${operation.method} ${operation.template} answered ${answer.status} ${String(answer.code)}, which its ` +
    `OpenAPI responses do not list: add "${String(answer.code)}" to its problems(...)`
  );
}

type FetchingApp = {
  fetch: (request: Request, ...rest: never[]) => Response | Promise<Response>;
  getOpenAPI31Document: (config: { openapi: "3.1.0"; info: { title: string; version: string } }) => unknown;
};

/**
 * The same app, whose `fetch` (and so `request`, which calls it, and any server it is given to)
 * throws on a problem answer its OpenAPI document does not list.
 */
export function checkingProblems<App extends FetchingApp>(app: App): App {
  let operations: Operation[] | undefined;
  const fetch = app.fetch;
  app.fetch = (async (request: Request, ...rest: never[]) => {
    const response = await fetch(request, ...rest);
    if (!response.headers.get("content-type")?.startsWith("application/problem+json")) return response;
    operations ??= operationsOf(
      app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: { title: "test", version: "1" },
      }) as OpenApiDocument,
    );
    const { code } = (await response.clone().json()) as { code?: unknown };
    const answer = {
      method: request.method,
      path: new URL(request.url).pathname,
      status: response.status,
      code,
    };
    const broken = undocumentedProblem(operations, answer);
    if (broken) throw new Error(broken);
    return response;
  }) as App["fetch"];
  return app;
}
