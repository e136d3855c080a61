import wgsl from '../../shaders/axpy.wgsl?raw';
import { bindInOrder, encodeDispatch } from './dispatch.ts';
import { getPipeline, type ComputeProgram } from './pipeline-cache.ts';
import { WORKGROUP_SIZE } from './shader-constants.ts';
import { withWgslLibs } from './wgsl-libs.ts';

export const axpyProgram: ComputeProgram = { shaderKey: 'axpy', wgsl: withWgslLibs(wgsl) };

/** y <- a*x + y on the GPU, one dispatch and one readback. The harness smoke check uses it. */
export async function runAxpy(
  device: GPUDevice,
  a: number,
  x: Float32Array<ArrayBuffer>,
  y: Float32Array<ArrayBuffer>,
): Promise<Float32Array> {
  if (x.length !== y.length) throw new RangeError('x and y differ in length');
  const pipeline = await getPipeline(device, axpyProgram);
  const params = new ArrayBuffer(8);
  new Float32Array(params, 0, 1)[0] = a;
  new Uint32Array(params, 4, 1)[0] = x.length;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const uBuf = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const xBuf = device.createBuffer({ size: x.byteLength, usage });
  const yBuf = device.createBuffer({ size: y.byteLength, usage });
  const readBuf = device.createBuffer({ size: y.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    device.queue.writeBuffer(uBuf, 0, params);
    device.queue.writeBuffer(xBuf, 0, x);
    device.queue.writeBuffer(yBuf, 0, y);
    const bindGroup = bindInOrder(device, pipeline, 'axpy', [{ buffer: uBuf }, { buffer: xBuf }, { buffer: yBuf }]);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeDispatch(pass, pipeline, bindGroup, Math.ceil(x.length / WORKGROUP_SIZE));
    pass.end();
    enc.copyBufferToBuffer(yBuf, 0, readBuf, 0, y.byteLength);
    device.queue.submit([enc.finish()]);
    await readBuf.mapAsync(GPUMapMode.READ);
    return new Float32Array(readBuf.getMappedRange().slice(0));
  } finally {
    for (const b of [uBuf, xBuf, yBuf, readBuf]) b.destroy();
  }
}
