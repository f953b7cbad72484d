// CSI Identity service: who we are, what we offer, and whether we are healthy (Probe).
import { hasController } from '../config.js';
import type { Driver } from '../driver.js';
import { failedPrecondition } from '../errors.js';
import { faultPoint } from '../faults.js';
import { packageVersion } from '../paths.js';
import type { CallContext, ServiceHandlers } from './server.js';
import type { GetPluginInfoResponse, IdentityHandlers, PluginCapability, PromiseHandlers, ProbeResponse } from './messages.js';

export function identityService(driver: Driver): ServiceHandlers {
  return {
    async GetPluginInfo(): Promise<GetPluginInfoResponse> {
      return { name: driver.config.driverName, vendor_version: packageVersion, manifest: { mode: driver.config.mode } };
    },

    async GetPluginCapabilities(): Promise<{ capabilities: PluginCapability[] }> {
      const capabilities: PluginCapability[] = [{ volume_expansion: { type: 'ONLINE' } }];
      if (hasController(driver.config)) capabilities.unshift({ service: { type: 'CONTROLLER_SERVICE' } });
      return { capabilities };
    },

    async Probe(_req: object, ctx: CallContext): Promise<ProbeResponse> {
      await faultPoint('probe', ctx.signal);
      const reasons = await driver.unhealthyReasons();
      if (reasons.length > 0) throw failedPrecondition(`unhealthy: ${reasons.join('; ')}`);
      return { ready: { value: driver.ready } };
    },
  } satisfies Partial<PromiseHandlers<IdentityHandlers, CallContext>>;
}
