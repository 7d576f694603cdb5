import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const here = fileURLToPath(new URL('.', import.meta.url))

// No React plugin: Vite's own transform compiles TSX with the automatic JSX runtime.
export default defineConfig({
  root: here,
  base: '/',
  build: { outDir: '../dist/ui', emptyOutDir: true, chunkSizeWarningLimit: 1000 },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/pull': 'http://127.0.0.1:8080',
      '/metrics': 'http://127.0.0.1:8080',
    },
  },
})
