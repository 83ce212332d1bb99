import type { FastifyReply } from 'fastify';

/**
 * Ends a bodiless answer (204, 202) without a payload. The `noContent` schema's type is `null`,
 * and `send(null)` would go out on a 202 as a JSON body "null" with a content type.
 */
export function sendNoContent(reply: FastifyReply, status: 202 | 204): FastifyReply {
  return reply.code(status).send();
}
