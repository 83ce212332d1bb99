import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../deps.js';
import { pendingMigrations, pingDb } from '../db/index.js';

export async function healthRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get('/healthz', { config: { access: 'public' }, schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => {
    try {
      await pingDb(deps.db);
      const pending = await pendingMigrations(deps.db);
      if (pending.length > 0) return reply.code(503).send({ status: 'migrations_pending' });
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'database_unreachable' });
    }
  });
}
