import { useEffect, useState } from 'preact/hooks';
import { FormAlert, Loading, PageHeader } from '../../components/ui';
import { getEmailSettings, type EmailSettingsState } from '../../features/settings/api/get-email-settings';
import { EmailSettingsForm } from '../../features/settings/components/email-settings-form';
import { TestEmailForm } from '../../features/settings/components/test-email-form';
import { describeError } from '../../lib/api';
import { useSession } from '../session';

/** Loaded lazily: only system admins ever download this page. */
export default function SettingsRoute() {
  const { state } = useSession();
  const [settings, setSettings] = useState<EmailSettingsState | null>(null);
  const [loadError, setLoadError] = useState('');

  useEffect(() => {
    let live = true;
    getEmailSettings().then(
      (loaded) => live && setSettings(loaded),
      (error: unknown) => live && setLoadError(describeError(error)),
    );
    return () => {
      live = false;
    };
  }, []);

  return (
    <>
      <PageHeader title="Settings" />
      <section class="card">
        <FormAlert>{loadError}</FormAlert>
        {settings === null ? (
          loadError === '' && <Loading label="Loading settings…" />
        ) : (
          <EmailSettingsForm settings={settings} onSaved={setSettings} />
        )}
      </section>
      {settings !== null && (
        <section class="card">
          <TestEmailForm defaultTo={state.user?.email ?? ''} />
        </section>
      )}
    </>
  );
}
