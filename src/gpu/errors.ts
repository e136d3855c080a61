import { ChordError, type ErrorCodeOf } from '../core/errors.ts';

/** WebGPU is missing, no adapter was granted, or the device could not be created. */
export class WebGpuUnavailableError extends ChordError<'WebGpuUnavailableError'> {
  override readonly name = 'WebGpuUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEBGPU_UNAVAILABLE', message, options);
  }
}

export type GpuEngineErrorCode = ErrorCodeOf<'GpuEngineError'>;

/** The rerank engine was used in a state that does not allow the call, or past its limits. */
export class GpuEngineError extends ChordError<'GpuEngineError'> {
  override readonly name = 'GpuEngineError';
  constructor(code: GpuEngineErrorCode, message: string) {
    super(code, message);
  }
}

/** The GPU device was lost while we were using it. */
export class GpuDeviceLostError extends ChordError<'GpuDeviceLostError'> {
  override readonly name = 'GpuDeviceLostError';
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('GPU_DEVICE_LOST', message);
    this.reason = reason;
  }
}
