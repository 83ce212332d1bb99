import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../deps.js';
import { listAudit } from './audit.js';

export async function auditRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.get<{ Querystring: { limit?: string; before?: string } }>(
    '/api/audit',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['audit'],
        querystring: {
          type: 'object',
          properties: { limit: { type: 'string', pattern: '^(?:[1-9]\\d{0,2})$' }, before: { type: 'string', pattern: '^[1-9]\\d{0,15}$' } },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const limit = Math.min(200, Number(request.query.limit ?? 50));
      const before = request.query.before === undefined ? undefined : Number(request.query.before);
      return { events: await listAudit(deps.db, { limit, before }) };
    },
  );
}
