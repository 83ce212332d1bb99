// The layers of src/ point one way (npm test runs this; a wrong-way import fails it):
//   entry points (main.ts → cli/ → server.ts; outbox-thread.ts)
//     → app.ts, runtime.ts (composition)
//       → each feature's routes.ts (and accounts/access.ts, the session check of every route)
//         → features' domain: recovery → mail → accounts
//           → shared: http/ (HTTP pieces, no feature), audit/, secrets/, limits/, db/, errors.ts, config.ts, clock.ts, random.ts, logger.ts
// (deps.ts, the AppDeps type, names every port and is the composition's, like app.ts)
// web/ takes server types only (import type), never server code.
const FEATURES = '(accounts|recovery|mail)';
const SHARED = '^src/(http|audit|secrets|limits|db)/|^src/(errors|config|clock|random|logger)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
    {
      name: 'no-feature-imports-anothers-routes',
      comment: "Routes are a feature's surface to HTTP; another feature uses its domain functions.",
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/routes\\.ts$', pathNot: '^src/$1/' },
    },
    {
      name: 'shared-imports-no-feature',
      comment: 'http/, audit/, secrets/, limits/, db/ and the root modules serve every feature and know none.',
      severity: 'error',
      from: { path: SHARED },
      to: { path: `^src/${FEATURES}/` },
    },
    {
      name: 'domain-speaks-no-http',
      comment: 'Only routes.ts (and accounts/account-routes.ts), api-schemas.ts (the JSON shapes) and accounts/access.ts talk HTTP; services raise DomainErrors.',
      severity: 'error',
      from: { path: `^src/${FEATURES}/`, pathNot: '/(routes|access|api-schemas)\\.ts$|^src/accounts/account-routes\\.ts$' },
      to: { path: '^src/http/|^fastify$|^@fastify/' },
    },
    { name: 'accounts-is-the-base', severity: 'error', from: { path: '^src/accounts/' }, to: { path: '^src/(recovery|mail)/' } },
    { name: 'mail-below-recovery', severity: 'error', from: { path: '^src/mail/' }, to: { path: '^src/recovery/' } },
    {
      name: 'nothing-imports-entry-points',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/(main|outbox-thread)\\.ts$' },
    },
    {
      name: 'only-the-cli-starts-the-server',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(main\\.ts|cli/)' },
      to: { path: '^src/(server\\.ts|cli/)' },
    },
    {
      name: 'composition-only-from-entry-points',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(main|server|outbox-thread|app|runtime)\\.ts$|^src/cli/' },
      to: { path: '^src/(app|runtime)\\.ts$' },
    },
    {
      name: 'web-takes-types-only',
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^src/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.tsx', '.js', '.mjs'] },
  },
};
