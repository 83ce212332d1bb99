// A small reading of the User-Agent header for the account page's session list: which of the
// common browsers on which common system, nothing more. No library: the list is short on purpose,
// and whatever it does not know is an "Unknown browser" rather than a guess.

export type Browser = 'Chrome' | 'Edge' | 'Firefox' | 'Safari';
export type OperatingSystem = 'Windows' | 'macOS' | 'Linux' | 'Android' | 'iOS';

export interface DeviceDescription {
  browser: Browser | null;
  os: OperatingSystem | null;
  /** "Firefox on Windows", "Chrome", "Unknown browser on Linux", "Unknown browser" */
  label: string;
}

// Other browsers built on Chromium or WebKit name Chrome and Safari too: they are not called Chrome.
const OTHER_BROWSERS = /\b(?:OPR|Opera|OPiOS|SamsungBrowser|YaBrowser|Vivaldi|UCBrowser|Brave|DuckDuckGo|GSA)\//;

export function browserOf(ua: string): Browser | null {
  if (/\bEdg(?:e|A|iOS)?\//.test(ua)) return 'Edge';
  if (OTHER_BROWSERS.test(ua)) return null;
  if (/\b(?:Firefox|FxiOS)\//.test(ua)) return 'Firefox';
  if (/\b(?:HeadlessChrome|Chrome|Chromium|CriOS)\//.test(ua)) return 'Chrome';
  if (/\bVersion\/[\d.]+.*\bSafari\//.test(ua)) return 'Safari';
  return null;
}

export function osOf(ua: string): OperatingSystem | null {
  // iOS first (its Safari says "like Mac OS X"), Android before Linux (Android's kernel is Linux).
  if (/\b(?:iPhone|iPad|iPod)\b/.test(ua)) return 'iOS';
  if (/\bAndroid\b/.test(ua)) return 'Android';
  if (/\bWindows\b/.test(ua)) return 'Windows';
  if (/\bMac OS X\b|\bMacintosh\b/.test(ua)) return 'macOS';
  if (/\bLinux\b|\bX11\b/.test(ua)) return 'Linux';
  return null;
}

export function describeDevice(userAgent: string | null): DeviceDescription {
  const ua = userAgent ?? '';
  const browser = browserOf(ua);
  const os = osOf(ua);
  const name = browser ?? 'Unknown browser';
  return { browser, os, label: os === null ? name : `${name} on ${os}` };
}
