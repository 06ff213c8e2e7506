// Microphone capture: hands the page 100 ms blocks of mono float samples and their level.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = Math.round(sampleRate / 10);
    this.buf = new Float32Array(this.block);
    this.n = 0;
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        this.buf[this.n++] = channel[i];
        if (this.n === this.block) {
          this.port.postMessage(this.buf.slice());
          this.n = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("capture", Capture);
