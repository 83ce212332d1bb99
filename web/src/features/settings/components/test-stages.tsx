import type { TestStage, TestStageOutcome } from '../api/send-test-email';

const STAGE_LABELS: Record<string, string> = {
  settings: 'Settings',
  secrets: 'Secrets',
  token: 'Entra ID token',
  dns: 'DNS lookup',
  connect: 'Connection',
  tls: 'TLS',
  auth: 'Sign-in (AUTH)',
  send: 'Sending',
};

const OUTCOMES: Record<TestStageOutcome, { mark: string; word: string }> = {
  ok: { mark: '✓', word: 'passed' },
  failed: { mark: '✗', word: 'failed' },
  skipped: { mark: '–', word: 'skipped' },
};

/** Each step of the test with its outcome and detail, in order. */
export function TestStages({ stages }: { stages: readonly TestStage[] }) {
  return (
    <section aria-labelledby="test-stages-heading">
      <h3 id="test-stages-heading">Steps</h3>
      <ol class="stages">
        {stages.map((stage) => {
          const outcome = OUTCOMES[stage.outcome] ?? { mark: '?', word: stage.outcome };
          return (
            <li key={stage.name} class={`stage stage-${stage.outcome}`}>
              <span class="stage-mark" aria-hidden="true">
                {outcome.mark}
              </span>
              <span class="stage-name">{STAGE_LABELS[stage.name] ?? stage.name}</span>
              <span class="stage-outcome">{outcome.word}</span>
              <span class="stage-detail">{stage.detail}</span>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
