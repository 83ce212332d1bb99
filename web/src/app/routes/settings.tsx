import { useEffect, useState } from 'preact/hooks';
import { FormAlert, Loading, PageHeader } from '../../components/ui';
import { getDeliveryTarget, type DeliveryTargetState } from '../../features/settings/api/delivery-target';
import { getEmailSettings, type EmailSettingsState } from '../../features/settings/api/get-email-settings';
import { DeliveryTargetCard } from '../../features/settings/components/delivery-target-card';
import { EmailSettingsForm } from '../../features/settings/components/email-settings-form';
import { describeError } from '../../lib/api';
import { useSession } from '../session';

/** Loaded lazily: only system admins ever download this page. */
export default function SettingsRoute() {
  const { state } = useSession();
  const [settings, setSettings] = useState<EmailSettingsState | null>(null);
  const [delivery, setDelivery] = useState<DeliveryTargetState | null>(null);
  const [loadError, setLoadError] = useState('');

  useEffect(() => {
    let live = true;
    Promise.all([getEmailSettings(), getDeliveryTarget()]).then(
      ([loaded, target]) => {
        if (!live) return;
        setSettings(loaded);
        setDelivery(target);
      },
      (error: unknown) => live && setLoadError(describeError(error)),
    );
    return () => {
      live = false;
    };
  }, []);

  /** A save may move mail (the first save goes from the dev mailbox to the server): said in the confirmation. */
  async function saved(result: EmailSettingsState): Promise<string | undefined> {
    setSettings(result);
    const before = delivery;
    let after: DeliveryTargetState;
    try {
      after = await getDeliveryTarget();
    } catch {
      return undefined;
    }
    setDelivery(after);
    if (before?.target === 'dev-mailbox' && after.target === 'server') {
      return 'Mail now goes to your mail server, not the dev mailbox: “Deliver to dev mailbox” under “Where mail goes” switches back.';
    }
    if (after.target === 'dev-mailbox' && after.serverConfigured && after.lockedBy === null) {
      return 'Mail still goes to the dev mailbox: “Deliver to your mail server” under “Where mail goes” sends it with these settings.';
    }
    return undefined;
  }

  return (
    <>
      <PageHeader title="Settings" />
      {settings === null || delivery === null ? (
        <section class="card">
          <FormAlert>{loadError}</FormAlert>
          {loadError === '' && <Loading label="Loading settings…" />}
        </section>
      ) : (
        <>
          <DeliveryTargetCard state={delivery} onChanged={setDelivery} />
          <EmailSettingsForm settings={settings} onSaved={saved} testTo={state.user?.email ?? ''} />
        </>
      )}
    </>
  );
}
