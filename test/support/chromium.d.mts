export declare const CHROMIUM: { executablePath: string; headless: boolean; args: string[] };
