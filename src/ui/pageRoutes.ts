/**
 * The web UI's pages on the HTTP port: one HTML shell for every page path (the
 * browser script renders the page from the /api endpoints), the script modules
 * and the style sheet, all served from files next to this one, so nothing comes
 * from outside the farm. Every response carries a Content-Security-Policy that
 * allows only the farm's own scripts and styles: even a rendering mistake could
 * not run a script smuggled into an action name or a file. The login form turns
 * a token into a cookie for browsers, which cannot send a bearer header on
 * their own.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TOKEN_COOKIE } from '../http/httpAccessPolicy.js';
import { HttpError, type HttpRoute } from '../http/httpServer.js';
import { STYLE_SHEET } from './styleSheet.js';

/** Allows only the farm's own scripts, styles and images; no framing, no plugins, no inline code. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Page paths the shell answers; the script renders each. */
const PAGE_PATHS = [
  '/',
  '/operations',
  '/actions/*',
  '/workers',
  '/storage',
  '/cas/*',
  '/invocations',
  '/invocations/*',
];

function securityHeaders(): Record<string, string> {
  return {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  };
}

function send(response: ServerResponse, statusCode: number, contentType: string, body: string | Buffer): void {
  response.writeHead(statusCode, {
    ...securityHeaders(),
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Granary</title>
<link rel="stylesheet" href="/ui/style.css">
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<header>
<a class="brand" href="/">Granary</a>
<nav>
<a href="/operations">Operations</a>
<a href="/invocations">Invocations</a>
<a href="/workers">Workers</a>
<a href="/storage">Storage</a>
<a href="/cas/">CAS</a>
</nav>
</header>
<main id="main"><noscript>These pages need JavaScript; the same data is under /api/.</noscript></main>
<footer>For tools: <a href="/metrics">/metrics</a> (Prometheus), <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, JSON under /api/.</footer>
</body>
</html>
`;

const LOGIN = (message: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Granary: sign in</title>
<link rel="stylesheet" href="/ui/style.css">
</head>
<body>
<header><a class="brand" href="/">Granary</a></header>
<main>
<h1>Sign in</h1>
<p>This farm needs a token (as in its --auth-tokens file, or a JWT) to show its pages.</p>
${message}
<form method="post" action="/login" class="login">
<label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;

/** Modules of the browser script (compiled next to this file), by the name they are served under. */
const SCRIPT_NAME = /^[a-z][a-zA-Z]*\.js$/;

async function asset(name: string): Promise<Buffer | string> {
  if (name === 'style.css') return STYLE_SHEET;
  if (!SCRIPT_NAME.test(name)) throw new HttpError(404, `no such file: ${name}`);
  try {
    return await readFile(new URL(`./browser/${name}`, import.meta.url));
  } catch {
    throw new HttpError(404, `no such file: ${name}`);
  }
}

export interface PageRouteOptions {
  /** Serve the login form (the port authenticates callers). */
  readonly login: boolean;
  /** Checks a token given to the login form (on the request's connection): undefined when the port accepts it, else why not. */
  readonly refusalOfToken?: (token: string, request: IncomingMessage) => Promise<string | undefined>;
  /** Cookies are only sent over TLS (the port serves HTTPS). */
  readonly secureCookies?: boolean;
}

/** The shell at every page path, the assets under /ui/, and the login form when the port needs one. */
export function pageRoutes(options: PageRouteOptions): HttpRoute[] {
  const routes: HttpRoute[] = PAGE_PATHS.map((path) => ({
    method: 'GET',
    path,
    scope: 'read',
    description: path === '/' ? 'the web UI' : undefined,
    handle: ({ response }) => send(response, 200, 'text/html; charset=utf-8', SHELL),
  }));
  routes.push({
    method: 'GET',
    path: '/ui/*',
    description: "the web UI's script and style sheet",
    handle: async ({ response, rest }) => {
      const body = await asset(rest);
      send(response, 200, rest.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8', body);
    },
  });
  if (!options.login) return routes;
  const cookieAttributes = `Path=/; HttpOnly; SameSite=Strict${options.secureCookies ? '; Secure' : ''}`;
  routes.push(
    {
      method: 'GET',
      path: '/login',
      description: 'sign in to the web UI with a token',
      handle: ({ response }) => send(response, 200, 'text/html; charset=utf-8', LOGIN('')),
    },
    {
      method: 'POST',
      path: '/login',
      handle: async ({ request, response }) => {
        const form = new URLSearchParams(await readBody(request, 64 * 1024));
        const token = (form.get('token') ?? '').trim();
        if (token === '' || !/^[\x21-\x7e]+$/.test(token)) {
          send(response, 400, 'text/html; charset=utf-8', LOGIN('<p class="error">That is not a token.</p>'));
          return;
        }
        // Checked now so a wrong token is said at once; every later request is checked again.
        if (await options.refusalOfToken?.(token, request)) {
          send(
            response,
            401,
            'text/html; charset=utf-8',
            LOGIN('<p class="error">This farm does not accept that token.</p>'),
          );
          return;
        }
        response.writeHead(303, {
          ...securityHeaders(),
          Location: '/',
          'Set-Cookie': `${TOKEN_COOKIE}=${encodeURIComponent(token)}; ${cookieAttributes}; Max-Age=43200`,
        });
        response.end();
      },
    },
    {
      method: 'POST',
      path: '/logout',
      handle: ({ response }) => {
        response.writeHead(303, {
          ...securityHeaders(),
          Location: '/login',
          'Set-Cookie': `${TOKEN_COOKIE}=; ${cookieAttributes}; Max-Age=0`,
        });
        response.end();
      },
    },
  );
  return routes;
}

async function readBody(request: NodeJS.ReadableStream, maximumBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of request) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    length += buffer.length;
    if (length > maximumBytes) throw new HttpError(413, 'the form is too large');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
