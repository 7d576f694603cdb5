import { writeFileSync } from 'node:fs'
import { definitionsReference } from '../src/docs/reference.js'

writeFileSync(new URL('../docs/definitions-reference.md', import.meta.url), definitionsReference())
process.stdout.write('wrote docs/definitions-reference.md\n')
