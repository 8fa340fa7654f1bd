// Keeps the request log out of the test output; tests that care pass their own logger.
process.env.LOG_LEVEL ??= "silent";
