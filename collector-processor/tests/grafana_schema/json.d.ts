// The JSON form of a schema type, as a dashboard file holds it: a string enum's members are its
// string values ("absolute" for ThresholdsMode.Absolute); everything else as the schema says.
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;
