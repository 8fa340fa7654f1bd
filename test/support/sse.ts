/** A minimal Server-Sent Events reader for tests: events as they arrive, comments included. */
export type SseEvent = { event?: string; id?: string; data?: string; comment?: string };

export type SseReader = {
  /** The next event (or comment), or throws after `timeoutMs`. */
  next(timeoutMs?: number): Promise<SseEvent>;
  close(): Promise<void>;
};

export function readSse(response: Response): SseReader {
  if (!response.body) throw new Error("no body");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const queue: SseEvent[] = [];

  function parse(): void {
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: SseEvent = {};
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) event.comment = line.slice(1).trim();
        const match = /^(event|id|data): ?(.*)$/.exec(line);
        if (match) {
          const field = match[1] as "event" | "id" | "data";
          event[field] =
            field === "data" && event.data !== undefined ? `${event.data}\n${match[2]}` : match[2];
        }
      }
      queue.push(event);
    }
  }

  return {
    async next(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (queue.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no event within ${timeoutMs} ms`);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const chunk = await Promise.race([
          reader.read(),
          new Promise<"timeout">((resolve) => {
            timer = setTimeout(() => resolve("timeout"), left);
          }),
        ]);
        clearTimeout(timer);
        if (chunk === "timeout") continue;
        if (chunk.done) throw new Error("stream ended");
        buffer += decoder.decode(chunk.value, { stream: true }).replaceAll("\r\n", "\n");
        parse();
      }
      return queue.shift() as SseEvent;
    },
    close: () => reader.cancel().catch(() => undefined),
  };
}

/** The next event that is not a heartbeat comment. */
export async function nextEvent(sse: SseReader, timeoutMs = 5_000): Promise<SseEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const event = await sse.next(Math.max(1, deadline - Date.now()));
    if (event.comment === undefined || event.event !== undefined) return event;
  }
}
