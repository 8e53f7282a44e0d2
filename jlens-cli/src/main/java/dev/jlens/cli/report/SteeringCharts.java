package dev.jlens.cli.report;

import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.annotations.XYTextAnnotation;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.PaintScale;
import org.jfree.chart.renderer.xy.XYBlockRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.PaintScaleLegend;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.data.xy.DefaultXYZDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Paint;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Base64;
import java.util.List;

/** The charts of the direction and steering reports: a cosine heat map and the effect-versus-cost plot. */
public final class SteeringCharts {

    static {
        System.setProperty("java.awt.headless", "true");
    }

    private SteeringCharts() {
    }

    /** A blue-white-red scale over [-1, 1], so that 0 (orthogonal) is white. */
    private static final class Diverging implements PaintScale {
        @Override
        public double getLowerBound() {
            return -1;
        }

        @Override
        public double getUpperBound() {
            return 1;
        }

        @Override
        public Paint getPaint(double v) {
            double t = Math.max(-1, Math.min(1, Double.isNaN(v) ? 0 : v));
            Color end = t >= 0 ? new Color(0xb2182b) : new Color(0x2166ac);
            double a = Math.abs(t);
            return new Color((int) Math.round(255 + (end.getRed() - 255) * a), (int) Math.round(255 + (end.getGreen() - 255) * a),
                    (int) Math.round(255 + (end.getBlue() - 255) * a));
        }
    }

    /** Matrix m[i][j] over labels (layers) as a heat map; values in [-1, 1]. */
    public static String heatMap(String title, String axisLabel, int[] labels, double[][] m) {
        int n = labels.length;
        double[] xs = new double[n * n], ys = new double[n * n], zs = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                xs[i * n + j] = labels[i];
                ys[i * n + j] = labels[j];
                zs[i * n + j] = m[i][j];
            }
        }
        DefaultXYZDataset data = new DefaultXYZDataset();
        data.addSeries("cos", new double[][]{xs, ys, zs});
        NumberAxis x = new NumberAxis(axisLabel), y = new NumberAxis(axisLabel);
        for (NumberAxis a : List.of(x, y)) {
            a.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
            a.setRange(labels[0] - 0.5, labels[n - 1] + 0.5);
            a.setLowerMargin(0);
            a.setUpperMargin(0);
        }
        XYBlockRenderer r = new XYBlockRenderer();
        r.setPaintScale(new Diverging());
        double step = n > 1 ? (labels[n - 1] - labels[0]) / (double) (n - 1) : 1;
        r.setBlockWidth(step);
        r.setBlockHeight(step);
        XYPlot plot = new XYPlot(data, x, y, r);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setOutlineVisible(false);
        if (n <= 16) {
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    XYTextAnnotation a = new XYTextAnnotation(String.format(java.util.Locale.ROOT, "%.2f", m[i][j]), labels[i], labels[j]);
                    a.setFont(new Font("SansSerif", Font.PLAIN, n <= 8 ? 11 : 8));
                    plot.addAnnotation(a);
                }
            }
        }
        JFreeChart chart = new JFreeChart(null, JFreeChart.DEFAULT_TITLE_FONT, plot, false);
        chart.setTitle(new TextTitle(title, new Font("SansSerif", Font.BOLD, 15)));
        NumberAxis legendAxis = new NumberAxis("cosine");
        legendAxis.setRange(-1, 1);
        PaintScaleLegend legend = new PaintScaleLegend(new Diverging(), legendAxis);
        legend.setPosition(RectangleEdge.RIGHT);
        legend.setStripWidth(12);
        legend.setMargin(4, 8, 4, 4);
        chart.addSubtitle(legend);
        chart.setBackgroundPaint(Color.WHITE);
        return png(chart, 560, 500);
    }

    /** One series of points (x = cost, y = effect) per group, points joined in order, each labelled. */
    public record Series(String name, double[] x, double[] y, String[] labels) {
    }

    public static String tradeOff(String title, String xLabel, String yLabel, List<Series> series, double[] highlight) {
        XYSeriesCollection data = new XYSeriesCollection();
        for (Series s : series) {
            XYSeries xy = new XYSeries(s.name(), false, true);
            for (int i = 0; i < s.x().length; i++) {
                if (Double.isFinite(s.x()[i]) && Double.isFinite(s.y()[i])) xy.add(s.x()[i], s.y()[i]);
            }
            data.addSeries(xy);
        }
        NumberAxis x = new NumberAxis(xLabel), y = new NumberAxis(yLabel);
        x.setAutoRangeIncludesZero(true);
        y.setAutoRangeIncludesZero(false);
        XYLineAndShapeRenderer r = new XYLineAndShapeRenderer(true, true);
        for (int i = 0; i < series.size(); i++) {
            r.setSeriesPaint(i, Charts.PALETTE[i % Charts.PALETTE.length]);
            r.setSeriesStroke(i, new BasicStroke(1.6f));
        }
        XYPlot plot = new XYPlot(data, x, y, r);
        plot.setBackgroundPaint(new Color(0xfafafa));
        plot.setDomainGridlinePaint(new Color(0xdddddd));
        plot.setRangeGridlinePaint(new Color(0xdddddd));
        plot.setOutlineVisible(false);
        for (Series s : series) {
            if (s.labels() == null) continue;
            for (int i = 0; i < s.x().length; i++) {
                if (!Double.isFinite(s.x()[i]) || !Double.isFinite(s.y()[i]) || s.labels()[i] == null) continue;
                XYTextAnnotation a = new XYTextAnnotation(s.labels()[i], s.x()[i], s.y()[i]);
                a.setFont(new Font("SansSerif", Font.PLAIN, 9));
                a.setTextAnchor(org.jfree.chart.ui.TextAnchor.BOTTOM_LEFT);
                plot.addAnnotation(a);
            }
        }
        if (highlight != null && Double.isFinite(highlight[0]) && Double.isFinite(highlight[1])) {
            XYTextAnnotation a = new XYTextAnnotation("◎ selected", highlight[0], highlight[1]);
            a.setFont(new Font("SansSerif", Font.BOLD, 12));
            a.setPaint(Color.BLACK);
            a.setTextAnchor(org.jfree.chart.ui.TextAnchor.TOP_LEFT);
            plot.addAnnotation(a);
        }
        JFreeChart chart = new JFreeChart(null, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setTitle(new TextTitle(title, new Font("SansSerif", Font.BOLD, 15)));
        chart.setBackgroundPaint(Color.WHITE);
        return png(chart, 720, 480);
    }

    static String png(JFreeChart chart, int w, int h) {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            ChartUtils.writeScaledChartAsPNG(bytes, chart, w, h, 2, 2);
            return "data:image/png;base64," + Base64.getEncoder().encodeToString(bytes.toByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
