import { serve } from "@hono/node-server";
import { Hono } from "hono";

/**
 * The HTTP ceiling: the same server stack as the service (Hono on @hono/node-server, started with
 * `node --import tsx`), with a handler that reads the JSON body of a hold and answers a small JSON
 * object, doing nothing else. No service built on this stack can answer faster on this machine.
 */
const app = new Hono();
app.get("/ping", (c) => c.text("pong"));
app.post("/reservations", async (c) => {
  const body = await c.req.json<{ userId: string; seatIds: string[] }>();
  return c.json({ userId: body.userId, seats: body.seatIds.length }, 200);
});

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3999) });
process.once("SIGTERM", () => server.close(() => process.exit(0)));
