import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, becomesFocused, describeInBrowser, launchBrowser, openPage, startWebApp, type RunningApp } from '../helpers/browser.js';
import { findTrustedTestCa } from '../helpers/tls.js';
import { watchNetwork, type NetworkWatch } from '../secrets/azure-fakes.js';
import { GRAPH_SCOPE, startFakeEntraId, startFakeGraph, type FakeEntraId, type FakeGraph } from '../mail/ms365-fakes.js';

// The Settings page's transport choice in Chromium: Microsoft Graph with a client secret, saved
// and tested against the Microsoft 365 fakes (Entra ID and Graph on 127.0.0.1, in this process,
// named to the server by AZURE_AUTHORITY_HOST and GRAPH_BASE_URL), and the form in each state.
// GATEHOUSE_SCREENSHOTS=<dir> keeps screenshots of the form (Graph saved, OAuth2 refused, managed identity) there.

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '11111111-aaaa-4aaa-8aaa-000000000001';
const CLIENT_SECRET = 'Zx8Q~fake-client-secret-value-0123456789';
const SENDER = 'gatehouse@contoso.example';
const RECIPIENT = 'inbox@example.com';
const CLIENT_ID_MESSAGE = "Enter the application (client) id: a GUID from the app's Overview page.";

const ca = await findTrustedTestCa();
if (ca === undefined) {
  const reason = 'the test CA is not trusted in this process (install openssl; test/global-setup.ts must run)';
  if (process.env.CI === 'true') throw new Error(`Settings transports e2e: ${reason}`);
  console.warn(`\n!!! SKIPPING the Settings transports e2e suite: ${reason}\n`);
}
const describeWithFakes = ca === undefined ? describe.skip : describeInBrowser;

describeWithFakes('the Settings page offers SMTP, SMTP with OAuth2 and Microsoft Graph, in Chromium against the Microsoft 365 fakes', () => {
  let entra: FakeEntraId;
  let graph: FakeGraph;
  let app: RunningApp;
  let browser: Browser;
  let secrets: SecretStore;
  let network: NetworkWatch;

  beforeAll(async () => {
    network = watchNetwork();
    const tls = { key: ca!.serverKey, cert: ca!.serverCert };
    entra = await startFakeEntraId({ ...tls, tenants: { [TENANT]: { apps: { [CLIENT]: { secret: CLIENT_SECRET } } } } });
    graph = await startFakeGraph({ ...tls, validateToken: entra.validate, mailboxes: [SENDER], permissions: [{ clientId: CLIENT, mailbox: SENDER }] });
    // The client secret is in the server's secret store, as `gatehouse secrets set mail-client-secret` puts it.
    secrets = createMemorySecretStore({ 'mail-client-secret': CLIENT_SECRET });
    [app, browser] = await Promise.all([
      startWebApp({ deps: { secrets }, env: { AZURE_AUTHORITY_HOST: entra.url, GRAPH_BASE_URL: graph.url } }),
      launchBrowser(),
    ]);
    await addUser(app.ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' });
  });
  afterAll(async () => {
    network?.stop();
    await browser?.close();
    await app?.close();
    await graph?.close();
    await entra?.close();
  });

  async function expectAccessible(page: Page): Promise<void> {
    await expect.poll(() => page.title()).toBe('Settings · Gatehouse');
    expect(await axeViolations(page)).toEqual([]);
  }

  /** The field's accessible description holds the text (hint and error are linked with aria-describedby). */
  async function expectDescribedBy(field: Locator, text: string): Promise<void> {
    await expect
      .poll(async () => field.evaluate((el) => (el.getAttribute('aria-describedby') ?? '').split(' ').map((id) => document.getElementById(id)?.textContent ?? '').join(' ')))
      .toContain(text);
  }

  /** Each step of the email test as shown: mark, name, outcome and detail. */
  async function stages(page: Page): Promise<string[]> {
    const steps = page.getByRole('region', { name: 'Steps' }).getByRole('listitem');
    return (await steps.allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim());
  }

  /** With GATEHOUSE_SCREENSHOTS=<dir>, the whole page as <dir>/<name>.png. */
  async function screenshot(page: Page, name: string): Promise<void> {
    const dir = process.env.GATEHOUSE_SCREENSHOTS;
    if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
  }

  function emailForm(page: Page) {
    const form = page.getByRole('form', { name: '“Forgot password” email' });
    const sendWith = form.getByRole('radiogroup', { name: 'Send with' });
    const signsInWith = form.getByRole('radiogroup', { name: 'App signs in with' });
    return {
      form,
      sendWith,
      smtp: sendWith.getByRole('radio', { name: 'SMTP with a password', exact: true }),
      oauth2: sendWith.getByRole('radio', { name: 'Microsoft 365 — SMTP with OAuth2', exact: true }),
      graph: sendWith.getByRole('radio', { name: 'Microsoft 365 — Microsoft Graph', exact: true }),
      typedHere: form.getByRole('radiogroup', { name: 'The sender address is:' }).getByRole('radio', { name: 'typed here' }),
      signsInWith,
      managedIdentity: signsInWith.getByRole('radio', { name: 'Managed identity' }),
      clientSecret: signsInWith.getByRole('radio', { name: 'Client secret' }),
      certificate: signsInWith.getByRole('radio', { name: 'Certificate' }),
      host: form.getByLabel('Host', { exact: true }),
      port: form.getByLabel('Port', { exact: true }),
      tlsMode: form.getByLabel('TLS mode', { exact: true }),
      senderAddress: form.getByLabel('Sender address', { exact: true }),
      emailSecret: form.getByLabel('Email secret name', { exact: true }),
      passwordSecret: form.getByLabel('Password secret name (optional)', { exact: true }),
      tenantId: form.getByLabel('Tenant ID', { exact: true }),
      clientId: form.getByLabel('Client ID', { exact: true }),
      userAssignedClientId: form.getByLabel('User-assigned identity client ID (optional)', { exact: true }),
      clientSecretName: form.getByLabel('Client secret name', { exact: true }),
      certificateName: form.getByLabel('Certificate name', { exact: true }),
      currentPassword: form.getByLabel('Current password', { exact: true }),
      save: form.getByRole('button', { name: 'Save' }),
    };
  }

  it('an admin chooses Microsoft Graph with a client secret, saves with the current password, and the test email goes out: Entra ID token ✓, send ✓', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    await page.goto('/settings');
    await page.getByLabel('Email or username').fill('root');
    await page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
    const f = emailForm(page);

    // Before any save: SMTP with a password, each choice with its one line of help.
    await f.host.waitFor();
    expect(await f.smtp.isChecked()).toBe(true);
    expect(await f.sendWith.getByRole('radio').count()).toBe(3);
    await f.form.getByText(/turns this off by default at the end of December 2026/).waitFor();
    await f.form.getByText(/^Recommended for Microsoft 365/).waitFor();
    // The TLS mode shows while SSL is on.
    expect(await f.tlsMode.inputValue()).toBe('auto');
    expect(await f.signsInWith.count()).toBe(0);
    await expectAccessible(page);

    // Microsoft Graph: no SMTP server, an Entra ID app instead.
    await f.graph.check();
    await f.signsInWith.waitFor();
    expect(await f.host.count()).toBe(0);
    expect(await f.port.count()).toBe(0);
    expect(await f.passwordSecret.count()).toBe(0);
    expect(await f.tenantId.count()).toBe(1);
    // Nothing chosen or filled yet: the page says what is missing, on each field.
    await f.save.click();
    await f.form.getByRole('alert').filter({ hasText: 'Correct the fields marked below.' }).waitFor();
    await f.signsInWith.getByText('Choose how the app signs in: managed identity, a client secret or a certificate.').waitFor();
    expect(await f.tenantId.getAttribute('aria-invalid')).toBe('true');
    expect(await f.clientId.getAttribute('aria-invalid')).toBe('true');
    expect(await f.emailSecret.getAttribute('aria-invalid')).toBe('true');
    // Focus goes to the first of them, in the form's order: the sender comes before the app.
    expect(await becomesFocused(page, f.emailSecret)).toBe(true);
    await expectAccessible(page);

    await f.clientSecret.check();
    await f.tenantId.fill(TENANT);
    await f.clientId.fill(CLIENT);
    await f.clientSecretName.fill('mail-client-secret');
    await f.typedHere.check();
    expect(await f.emailSecret.count()).toBe(0);
    await f.senderAddress.fill(SENDER);
    await f.currentPassword.fill(STRONG_PASSWORD);
    await f.save.click();
    await f.form.getByRole('status').filter({ hasText: /^Saved\. Client secret: found in the secret store\.$/ }).waitFor();
    await f.form.getByText('Found in the secret store', { exact: true }).waitFor();
    // Saved: nothing changes where mail goes now, so no password is asked for.
    expect(await f.currentPassword.count()).toBe(0);
    const saved = await (await page.request.get('/api/settings/email')).json();
    expect(saved).toMatchObject({
      transport: 'graph',
      senderAddress: SENDER,
      emailSecretName: null,
      passwordSecretName: null,
      tenantId: TENANT,
      clientId: CLIENT,
      entraCredential: 'client-secret',
      clientSecretName: 'mail-client-secret',
      certificateName: null,
      secretsResolve: { email: null, password: null, clientSecret: true, certificate: null },
    });
    expect(JSON.stringify(saved)).not.toContain(CLIENT_SECRET);
    await expectAccessible(page);
    await screenshot(page, 'settings-graph');

    // A fresh load shows the same choice.
    await page.reload();
    await f.clientSecretName.waitFor();
    expect(await f.graph.isChecked()).toBe(true);
    expect(await f.clientSecret.isChecked()).toBe(true);
    expect(await f.typedHere.isChecked()).toBe(true);
    expect(await f.senderAddress.inputValue()).toBe(SENDER);
    expect(await f.tenantId.inputValue()).toBe(TENANT);
    expect(await f.clientId.inputValue()).toBe(CLIENT);

    // Send test email: a token from the fake Entra ID, then Graph sendMail.
    const test = page.getByRole('form', { name: 'Send test email' });
    await test.getByLabel('To address', { exact: true }).fill(RECIPIENT);
    await test.getByRole('button', { name: 'Send test email' }).click();
    await test.getByRole('status').filter({ hasText: `Test email sent to ${RECIPIENT}` }).waitFor();
    const steps = await stages(page);
    expect(steps).toEqual([
      expect.stringMatching(/^✓ Settings passed /),
      expect.stringMatching(/^✓ Secrets passed sender gatehouse@contoso\.example; client secret from secret "mail-client-secret"$/),
      expect.stringMatching(/^✓ Entra ID token passed a token for https:\/\/graph\.microsoft\.com\/\.default from https:\/\/127\.0\.0\.1:\d+/),
      expect.stringMatching(/^✓ DNS lookup passed /),
      expect.stringMatching(/^✓ Connection passed /),
      expect.stringMatching(/^✓ TLS passed /),
      expect.stringMatching(/^✓ Sending passed /),
    ]);
    expect(steps.join('\n')).not.toContain(CLIENT_SECRET);
    expect(await test.getByRole('alert').innerText()).toBe('');
    const [message] = await graph.waitForMessages(1);
    expect(message!.sender.toLowerCase()).toBe(SENDER);
    expect(message!.to.map((address) => address.toLowerCase())).toEqual([RECIPIENT]);
    expect(message!.token.clientId).toBe(CLIENT);
    expect(entra.tokenRequests(CLIENT, GRAPH_SCOPE)).toBeGreaterThanOrEqual(1);
    await expectAccessible(page);

    // Everything the server reached was on this machine.
    expect(network.requests.length).toBeGreaterThan(0);
    expect(network.requests.filter((r) => r.host !== '127.0.0.1')).toEqual([]);
    expect(network.connections.filter((address) => !/^(?:::ffff:)?127\.0\.0\.1$/.test(address))).toEqual([]);

    expect(record.foreignRequests()).toEqual([]);
    expect(record.cspViolations).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    await context.close();
  });

  it('switching to SMTP with OAuth2 fills smtp.office365.com and 587; an invalid client id gets the server’s message next to Client ID; axe finds nothing in any transport or credential state', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    expect((await page.request.post('/api/auth/login', { data: { login: 'root', password: STRONG_PASSWORD } })).status()).toBe(200);
    // Microsoft Graph saved (no SMTP server yet), whatever ran before.
    const put = await page.request.put('/api/settings/email', {
      data: {
        transport: 'graph',
        senderAddress: SENDER,
        tenantId: TENANT,
        clientId: CLIENT,
        entraCredential: 'client-secret',
        clientSecretName: 'mail-client-secret',
        currentPassword: STRONG_PASSWORD,
      },
    });
    expect(put.status(), await put.text()).toBe(200);
    await page.goto('/settings');
    const f = emailForm(page);
    await f.clientSecretName.waitFor();
    expect(await f.graph.isChecked()).toBe(true);
    await expectAccessible(page);

    // SMTP with OAuth2 starts from Microsoft 365's SMTP server; the Entra ID app stays as typed.
    await f.oauth2.check();
    await f.host.waitFor();
    expect(await f.host.inputValue()).toBe('smtp.office365.com');
    expect(await f.port.inputValue()).toBe('587');
    expect(await f.form.getByLabel('SSL enabled', { exact: true }).isChecked()).toBe(true);
    expect(await f.tlsMode.inputValue()).toBe('auto');
    expect(await f.clientId.inputValue()).toBe(CLIENT);
    expect(await f.clientSecret.isChecked()).toBe(true);
    expect(await f.passwordSecret.count()).toBe(0);
    // The transport changes where mail goes: the password is asked for.
    await f.currentPassword.waitFor();
    await expectAccessible(page);

    // A client id that is not a GUID: only the server says so, and its message lands on the field.
    await f.clientId.fill('not-a-client-id');
    await f.currentPassword.fill(STRONG_PASSWORD);
    await f.save.click();
    await expectDescribedBy(f.clientId, CLIENT_ID_MESSAGE);
    expect(await f.clientId.getAttribute('aria-invalid')).toBe('true');
    expect(await f.tenantId.getAttribute('aria-invalid')).toBeNull();
    await f.form.getByRole('alert').filter({ hasText: 'Correct the fields marked below.' }).waitFor();
    expect(await becomesFocused(page, f.clientId)).toBe(true);
    expect((await (await page.request.get('/api/settings/email')).json()).transport).toBe('graph');
    await expectAccessible(page);
    await screenshot(page, 'settings-smtp-oauth2-error');

    // Managed identity: no tenant, and the client id is a user-assigned identity's, optional.
    await f.managedIdentity.check();
    await f.userAssignedClientId.waitFor();
    expect(await f.tenantId.count()).toBe(0);
    expect(await f.clientId.count()).toBe(0);
    expect(await f.clientSecretName.count()).toBe(0);
    await expectAccessible(page);
    await screenshot(page, 'settings-managed-identity');

    // Certificate: the Key Vault certificate's name instead of the client secret's.
    await f.certificate.check();
    await f.certificateName.waitFor();
    expect(await f.tenantId.count()).toBe(1);
    expect(await f.clientSecretName.count()).toBe(0);
    await f.form.getByText(/private key in PEM/).waitFor();
    await expectAccessible(page);

    // Microsoft Graph with the certificate: no SMTP server fields.
    await f.graph.check();
    await f.certificateName.waitFor();
    expect(await f.host.count()).toBe(0);
    await expectAccessible(page);

    // SMTP with a password: the server, the password secret, no Entra ID app; the sender as typed.
    await f.smtp.check();
    await f.passwordSecret.waitFor();
    expect(await f.host.inputValue()).toBe('smtp.office365.com');
    expect(await f.signsInWith.count()).toBe(0);
    expect(await f.tenantId.count()).toBe(0);
    expect(await f.senderAddress.inputValue()).toBe(SENDER);
    await f.form.getByLabel('SSL enabled', { exact: true }).uncheck();
    expect(await f.tlsMode.count()).toBe(0);
    await expectAccessible(page);

    expect(record.foreignRequests()).toEqual([]);
    expect(record.cspViolations).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    await context.close();
  });
});
