import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../deps.js';

export async function mailRoutes(_app: FastifyInstance, _deps: AppDeps): Promise<void> {}
