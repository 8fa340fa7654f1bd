/**
 * Where the real services for tests are. Suites that need one call `requireService`: without its
 * TEST_*_URL the suite is skipped with one line saying how to enable it, and under CI=true a
 * skipped service suite fails instead. (No Docker engine runs on our machines, so testcontainers
 * is not used; CI exports the URLs of the machine's own services.)
 */
export type Service = "TEST_DATABASE_URL" | "TEST_REDIS_URL" | "TEST_AMQP_URL";

const EXAMPLES: Record<Service, string> = {
  TEST_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test",
  TEST_REDIS_URL: "redis://127.0.0.1:6379",
  TEST_AMQP_URL: "amqp://guest:guest@127.0.0.1:5672",
};

export function serviceUrl(service: Service): string | undefined {
  const url = process.env[service];
  if (url) return url;
  const message = `${service} is not set; set it (e.g. ${service}=${EXAMPLES[service]}) to run these suites.`;
  if (process.env.CI === "true")
    throw new Error(`${message} Under CI=true a skipped service suite is a failure.`);
  console.warn(`skipped: ${message}`);
  return undefined;
}
