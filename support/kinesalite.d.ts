declare module "kinesalite" {
  import type { Server } from "node:http"

  interface KinesaliteOptions {
    readonly path?: string
    readonly createStreamMs?: number
    readonly deleteStreamMs?: number
    readonly updateStreamMs?: number
    readonly shardLimit?: number
  }

  function kinesalite(options?: KinesaliteOptions): Server
  export default kinesalite
}
