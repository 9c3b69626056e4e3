package interop;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A small test runner: runs every {@link Test} method of the suite classes (in class order,
 * then method name order), each on its own thread with a time limit and a fresh {@link Ctx}
 * that closes whatever the test opened. Prints PASS/FAIL per test and a summary; exits 1 on
 * any failure. Arguments are substrings: only tests whose "Class.method" contains one of
 * them run.
 */
public final class Runner {
    static final Class<?>[] SUITES = {
        ConnectionTests.class,
        ExchangeTests.class,
        ConsumeTests.class,
        PublishTests.class,
        HeaderTests.class,
        ErrorTests.class,
        RestartTests.class,
        ExtraTests.class,
    };
    static final long TEST_TIMEOUT_SECONDS = 120;

    public static void main(String[] args) throws Exception {
        List<Method> tests = new ArrayList<>();
        for (Class<?> suite : SUITES) {
            Method[] methods = suite.getDeclaredMethods();
            Arrays.sort(methods, Comparator.comparing(Method::getName));
            for (Method m : methods) {
                if (!m.isAnnotationPresent(Test.class)) continue;
                String id = suite.getSimpleName() + "." + m.getName();
                if (args.length > 0 && Arrays.stream(args).noneMatch(id::contains)) continue;
                tests.add(m);
            }
        }
        if (tests.isEmpty()) {
            System.err.println("no tests selected");
            System.exit(2);
        }
        System.out.println("broker " + Ctx.brokerKind() + " at " + Ctx.url().replaceAll("//[^@]*@", "//"));
        long suiteStart = System.nanoTime();
        List<String> failed = new ArrayList<>();
        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "test");
            t.setDaemon(true);
            return t;
        });
        for (Method m : tests) {
            String id = m.getDeclaringClass().getSimpleName() + "." + m.getName();
            String label = m.getAnnotation(Test.class).value();
            long start = System.nanoTime();
            Ctx ctx = new Ctx(m.getName());
            Throwable error = null;
            Future<?> f = pool.submit(() -> {
                Object suite = m.getDeclaringClass().getDeclaredConstructor().newInstance();
                m.invoke(suite, ctx);
                return null;
            });
            try {
                f.get(TEST_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                error = e.getCause();
                if (error instanceof InvocationTargetException) error = error.getCause();
            } catch (TimeoutException e) {
                f.cancel(true);
                error = new AssertionError("timed out after " + TEST_TIMEOUT_SECONDS + "s");
            }
            ctx.closeAll();
            long ms = (System.nanoTime() - start) / 1_000_000;
            String suffix = label.isEmpty() ? "" : "  [" + label + "]";
            if (error == null) {
                System.out.printf("PASS %-60s %6d ms%s%n", id, ms, suffix);
            } else {
                failed.add(id);
                System.out.printf("FAIL %-60s %6d ms%s%n", id, ms, suffix);
                System.out.println("     " + describe(error).replace("\n", "\n     "));
            }
            System.out.flush();
        }
        long total = (System.nanoTime() - suiteStart) / 1_000_000;
        System.out.printf("%d tests, %d passed, %d failed (%.1f s) against %s%n",
                tests.size(), tests.size() - failed.size(), failed.size(), total / 1000.0, Ctx.brokerKind());
        for (String id : failed) System.out.println("  failed: " + id);
        System.exit(failed.isEmpty() ? 0 : 1);
    }

    private static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        sb.append(e instanceof AssertionError ? "" : e.getClass().getName() + ": ").append(e.getMessage());
        for (StackTraceElement el : e.getStackTrace()) {
            if (el.getClassName().startsWith("interop.") && !el.getClassName().equals("interop.Ctx")
                    && !el.getClassName().startsWith("interop.Runner")) {
                sb.append("\n  at ").append(el);
                break;
            }
        }
        Throwable c = e.getCause();
        for (int depth = 0; c != null && depth < 3; depth++, c = c.getCause()) {
            sb.append("\n  caused by ").append(c.getClass().getName()).append(": ").append(c.getMessage());
        }
        return sb.toString();
    }
}
