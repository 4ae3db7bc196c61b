/// <reference lib="dom" />
/**
 * How the pages read the farm: GET a JSON endpoint under /api/. A refusal for
 * want of credentials sends the browser to the login form; other failures
 * become errors whose message the page shows (as text).
 */

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (response.status === 401) {
    location.assign('/login');
    throw new ApiError(401, 'sign in to see this page');
  }
  if (!response.ok) {
    const message = (await response.text()).trim();
    throw new ApiError(response.status, message || `${response.status} ${response.statusText}`);
  }
  return (await response.json()) as T;
}
