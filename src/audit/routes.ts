import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { AppDeps } from '../deps.js';
import { auditEventListSchema, auditExportQuerySchema, auditListQuerySchema } from './api-schemas.js';
import { auditEventsUpTo, countAudit, listAudit, parseAuditFilter } from './audit.js';
import { AUDIT_CSV_HEADER, auditCsvRecord } from './csv.js';

/** The most rows one export holds: the newest ones matching, when more match. */
export const AUDIT_EXPORT_MAX_ROWS = 50_000;

export async function auditRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  app.get(
    '/api/audit',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['audit'],
        description:
          'Security events, newest first, `limit` at a time (at most 200) before the event `before`. Filters combine: `type` (one or several, repeated or comma-separated), `outcome`, `user` (an actor or target id, or part of a recorded label, of a current user\'s name, email or username, or of a failed sign-in\'s login), `from` and `to` (ISO-8601 UTC, inclusive).',
        querystring: auditListQuerySchema,
        response: { 200: auditEventListSchema },
      },
    },
    async (request) => {
      const filter = parseAuditFilter(request.query);
      const limit = Math.min(200, Number(request.query.limit ?? 50));
      const before = request.query.before === undefined ? undefined : Number(request.query.before);
      return { events: await listAudit(deps.db, { limit, before, filter }) };
    },
  );

  app.get(
    '/api/audit/export.csv',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['audit'],
        description: `The events GET /api/audit's filters select, newest first, as CSV (RFC 4180, UTF-8): id, at, type, outcome, actor, target, ip, detail (compact JSON). At most ${AUDIT_EXPORT_MAX_ROWS.toLocaleString('en')} rows, the newest; when more match, the header Gatehouse-Export-Truncated: true says so. Cells that a spreadsheet would read as a formula start with '.`,
        querystring: auditExportQuerySchema,
        response: { 200: { description: 'The events as CSV, text/csv; charset=utf-8.' } },
      },
    },
    async (request, reply) => {
      const filter = parseAuditFilter(request.query);
      const { count, newestId } = await countAudit(deps.db, filter);
      const rows = Math.min(count, AUDIT_EXPORT_MAX_ROWS);
      const day = deps.clock.now().toISOString().slice(0, 10).replaceAll('-', '');
      reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="gatehouse-audit-${day}.csv"`)
        .header('gatehouse-export-rows', String(rows))
        .header('gatehouse-export-truncated', String(count > AUDIT_EXPORT_MAX_ROWS));
      async function* lines(): AsyncGenerator<string> {
        yield AUDIT_CSV_HEADER;
        if (newestId === undefined) return;
        let chunk = '';
        for await (const event of auditEventsUpTo(deps.db, filter, newestId, rows)) {
          chunk += auditCsvRecord(event);
          if (chunk.length >= 64 * 1024) {
            yield chunk;
            chunk = '';
          }
        }
        if (chunk !== '') yield chunk;
      }
      return reply.send(Readable.from(lines()));
    },
  );
}
