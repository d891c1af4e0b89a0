/** Where `switchboard status` looks without --admin or ADMIN_URL: the default --admin-host and --admin-port. */
export const DEFAULT_ADMIN_URL = "http://127.0.0.1:9090";
