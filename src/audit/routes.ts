import type { FastifyInstance } from 'fastify';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { AppDeps } from '../deps.js';
import { pageLimitSchema } from '../http/schemas.js';
import { auditEventListSchema } from './api-schemas.js';
import { listAudit } from './audit.js';

export async function auditRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  app.get(
    '/api/audit',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['audit'],
        querystring: {
          type: 'object',
          properties: { limit: pageLimitSchema, before: { type: 'string', pattern: '^[1-9]\\d{0,15}$' } },
          additionalProperties: false,
        },
        response: { 200: auditEventListSchema },
      },
    },
    async (request) => {
      const limit = Math.min(200, Number(request.query.limit ?? 50));
      const before = request.query.before === undefined ? undefined : Number(request.query.before);
      return { events: await listAudit(deps.db, { limit, before }) };
    },
  );
}
