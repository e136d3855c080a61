import { ChordError } from '../core/errors.ts';

/** WebGPU is missing, no adapter was granted, or the device could not be created. */
export class WebGpuUnavailableError extends ChordError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEBGPU_UNAVAILABLE', message, options);
  }
}

/** The GPU device was lost while we were using it. */
export class GpuDeviceLostError extends ChordError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('GPU_DEVICE_LOST', message);
    this.reason = reason;
  }
}
