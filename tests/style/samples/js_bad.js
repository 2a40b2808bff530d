export class counter {
  Increment(step_size) {
    return step_size;
  }
}

function make_counter() {
  let the_message = "made";
  return the_message;
}
