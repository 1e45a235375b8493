// Local OpenID Connect provider for the security chapter: panva's oidc-provider
// (OpenID Certified), with the client credentials grant and JWT access tokens.
// Usage: node provider.mjs <port>   (listens on 127.0.0.1 only)
// Client secrets come from the environment (OIDC_SECRET_<CLIENT>), never from this file.
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import Provider, { errors } from "oidc-provider";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error("usage: node provider.mjs <port>");
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// The API this provider issues tokens for (the audience) and the scopes it knows.
const API = "https://api.resilia.example";
const API_SCOPES = "churn:predict customers:read metrics:read";

// client id -> scopes it may ask for, and access token lifetime (seconds).
const CLIENTS = {
  "scoring-job": { scope: "churn:predict", ttl: 300 },
  "support-app": { scope: "churn:predict customers:read", ttl: 300 },
  "metrics-reader": { scope: "metrics:read", ttl: 300 },
  // A token that expires almost at once, to show expiry without waiting minutes.
  "short-lived-job": { scope: "churn:predict", ttl: 1 },
};

function secretOf(clientId) {
  const name = `OIDC_SECRET_${clientId.toUpperCase().replaceAll("-", "_")}`;
  const secret = process.env[name];
  if (!secret) {
    console.error(`missing ${name} in the environment`);
    process.exit(2);
  }
  return secret;
}

// A fresh signing key at each start, published at jwks_uri; never written to disk.
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: Object.entries(CLIENTS).map(([clientId, { scope }]) => ({
    client_id: clientId,
    client_secret: secretOf(clientId),
    grant_types: ["client_credentials"],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: "client_secret_basic",
    scope,
  })),
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  ttl: { ClientCredentials: (ctx, token, client) => CLIENTS[client.clientId].ttl },
  scopes: API_SCOPES.split(" "),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => API,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => {
        if (resource !== API && resource !== "https://reports.resilia.example") {
          throw new errors.InvalidTarget(`unknown resource ${resource}`);
        }
        return {
          scope: API_SCOPES,
          audience: resource,
          accessTokenTTL: CLIENTS[client.clientId].ttl,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        };
      },
    },
  },
});

const server = provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc-provider ready: ${issuer}/.well-known/openid-configuration`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
