// An OpenID Provider nobody on the team wrote (panva's oidc-provider), for the
// browser test that signs in against it: tests/e2e/test_independent_provider.py.
//
//   FRONTEND=http://localhost:3000 BACKEND=http://127.0.0.1:8000 node server.mjs 4000
//
// Listens on 127.0.0.1:<port> (argv[2], else PORT) with the issuer
// http://localhost:<port>. One public client, "pingapp", for the app at FRONTEND;
// with BACKEND, its back-channel logout URI is BACKEND/auth/backchannel-logout.
// Pushed authorization requests and `iss` in authorization responses are on by
// default in this version; DPoP (RFC 9449) is turned on below, so a token request
// with a proof gets a DPoP-bound token (`token_type: DPoP`, `cnf.jkt`).
// With RESOURCE=<audience>, access tokens are RFC 9068 JWTs for that resource
// server (RFC 8707), so the app's own API can verify them; without it they are
// opaque tokens for the userinfo endpoint.
// Its built-in development login form accepts any login and password; the login
// becomes the subject, and the profile and email scopes give a name and email.
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT);
const frontend = process.env.FRONTEND;
const backend = process.env.BACKEND;
const resource = process.env.RESOURCE;
if (!Number.isInteger(port) || port <= 0 || !frontend) {
  console.error('usage: FRONTEND=http://localhost:3000 node server.mjs <port>');
  process.exit(2);
}

const provider = new Provider(`http://localhost:${port}`, {
  clients: [
    {
      client_id: 'pingapp',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [`${frontend}/callback`],
      post_logout_redirect_uris: [`${frontend}/`],
      ...(backend
        ? {
            backchannel_logout_uri: `${backend}/auth/backchannel-logout`,
            backchannel_logout_session_required: true,
          }
        : {}),
    },
  ],
  pkce: { required: () => true }, // S256 is the only method this version accepts
  // The app's default AUTH_SCOPE, so the test runs with the defaults.
  scopes: ['openid', 'offline_access', 'profile', 'email', 'read:messages'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    dPoP: { enabled: true },
    ...(resource
      ? {
          resourceIndicators: {
            enabled: true,
            defaultResource: () => resource,
            useGrantedResource: () => true,
            getResourceServerInfo: (_ctx, indicator) => {
              if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
              return {
                scope: 'read:messages',
                audience: resource,
                accessTokenFormat: 'jwt',
                jwt: { sign: { alg: 'RS256' } },
              };
            },
          },
        }
      : {}),
  },
  cookies: { keys: ['pingapp-independent-op-test-only'] },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: `${id[0].toUpperCase()}${id.slice(1)} Independent`,
          email: `${id}@independent.example`,
        };
      },
    };
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening: http://localhost:${port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
