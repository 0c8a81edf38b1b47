/**
 * The key devices one gateway talks to, one per backend type (SPEC section 9: the simulator at
 * HSM_URL, a PKCS#11 token, a Ledger), each opened on first use. A pool's plan names its device type;
 * a key records the id of the device that holds it (`sim-…`, `ledger-…`, `pkcs11-…`), whose prefix is
 * the type, so a key is only ever signed with by its own backend.
 */
import { DeviceError } from '../../common/errors.js';
import type { DeviceInfo, SigningDevice } from './signing-device.js';

export const DEVICE_TYPES = ['sim', 'ledger', 'pkcs11'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

export function isDeviceType(value: string): value is DeviceType {
  return (DEVICE_TYPES as readonly string[]).includes(value);
}

/** How to configure each backend, for the error a request for an unconfigured one gets. */
const HOW_TO_CONFIGURE: Record<DeviceType, string> = {
  sim: 'set HSM_URL and HSM_PIN (npm start writes a demo PIN file)',
  ledger: 'set LEDGER_URL to "hid" (USB) or tcp://HOST:PORT (Speculos, or hsm-sim --mode ledger)',
  pkcs11: 'set PKCS11_MODULE, PKCS11_TOKEN_LABEL and PKCS11_PIN',
};

export interface DeviceStatus {
  readonly type: DeviceType;
  readonly status: 'ok' | 'down';
  readonly info?: DeviceInfo;
  readonly error?: string;
}

export interface DeviceSet {
  /** The configured types, in a stable order. */
  readonly types: readonly DeviceType[];
  /** The device of this type; an error saying how to configure it when it is not. */
  get(type: string): SigningDevice;
  /** The device that holds a key, by the key's device id. */
  forKey(key: { readonly device: string }): SigningDevice;
  /** Each configured device's info, or why it does not answer within `timeoutMs`. */
  status(timeoutMs: number): Promise<readonly DeviceStatus[]>;
  close(): Promise<void>;
}

/** The type of the device a key id names (`sim-4f…` → sim). */
export function deviceTypeOfId(deviceId: string): DeviceType | null {
  const prefix = deviceId.split('-', 1)[0] ?? '';
  return isDeviceType(prefix) ? prefix : null;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

/** `factories` opens each configured backend; it is called at most once per type, on first use. */
export function createDeviceSet(factories: Partial<Record<DeviceType, () => SigningDevice>>): DeviceSet {
  const types = DEVICE_TYPES.filter((t) => factories[t] !== undefined);
  const opened = new Map<DeviceType, SigningDevice>();

  const get = (type: string): SigningDevice => {
    if (!isDeviceType(type)) throw new DeviceError('invalid', 'unknown_device_type', `device type "${type.slice(0, 40)}" is not one of ${DEVICE_TYPES.join(', ')}`);
    const existing = opened.get(type);
    if (existing) return existing;
    const factory = factories[type];
    if (!factory) throw new DeviceError('unavailable', 'device_not_configured', `no ${type} device is configured: ${HOW_TO_CONFIGURE[type]}`);
    const device = factory();
    opened.set(type, device);
    return device;
  };

  return {
    types,
    get,
    forKey(key) {
      const type = deviceTypeOfId(key.device);
      if (type === null) throw new DeviceError('internal', 'unknown_device', `the key's device "${key.device.slice(0, 80)}" is of no known type`);
      return get(type);
    },
    async status(timeoutMs) {
      return Promise.all(
        types.map(async (type): Promise<DeviceStatus> => {
          try {
            return { type, status: 'ok', info: await withTimeout(get(type).info(), timeoutMs) };
          } catch (error) {
            return { type, status: 'down', error: error instanceof Error ? error.message : String(error) };
          }
        }),
      );
    },
    async close() {
      await Promise.all([...opened.values()].map((d) => d.close()));
      opened.clear();
    },
  };
}
